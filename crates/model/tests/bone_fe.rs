//! Voxel bone FE models: analytical checks (fast) and, ignored by default (release in CI),
//! the vertebral compression validation that writes docs/validation/bone_stiffness.md.

use nalgebra::{Matrix3, Vector3};
use spinetwin_anatomy::{Level, LevelRange};
use spinetwin_imaging::{Grid, Volume};
use spinetwin_model::bone::{BoneMaterial, Isotropic};
use spinetwin_model::bone_fe::{
    add_end_caps, compression_test, local_label, vertebra_compression, voxel_model, BoneElement,
    CompressionOptions, Platens, PublishedProtocol, VertebraTest, VertebraTestOptions, VoxelModel,
    VoxelModelOptions, CAP_PMMA,
};
use spinetwin_phantom::{generate, PhantomSpec};

fn grid(dims: [usize; 3], spacing: [f64; 3], direction: Matrix3<f64>) -> Grid {
    Grid::new(dims, spacing, Vector3::new(-12.0, 40.0, 300.0), direction).unwrap()
}

fn model(
    g: &Grid,
    value: impl Fn(usize, usize, usize) -> f32,
    e_of: impl Fn(f64) -> f64,
    nu: f64,
    element: BoneElement,
) -> VoxelModel {
    let [ni, nj, _] = g.dims;
    let mut data = vec![0f32; g.len()];
    for (n, v) in data.iter_mut().enumerate() {
        *v = value(n % ni, (n / ni) % nj, n / (ni * nj));
    }
    let values = Volume::new(g.clone(), data).unwrap();
    let labels = Volume::filled(g.clone(), 1u16);
    voxel_model(
        &values,
        &labels,
        |l| l == 1,
        |_, v| Isotropic { e_mpa: e_of(v), nu },
        &VoxelModelOptions { step: 1, element },
    )
    .unwrap()
}

fn stiffness(m: &VoxelModel, platens: Platens) -> f64 {
    let (r, _) = compression_test(
        m,
        &CompressionOptions {
            platens,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.converged);
    assert!((r.force_n - r.bottom_force_n).abs() < 1e-8 * r.force_n.abs());
    r.stiffness_n_per_mm
}

#[test]
fn homogeneous_block_between_sliding_platens_is_e_a_over_l() {
    // 6 x 5 x 8 voxels of 1 x 1 x 1.5 mm: A = 30 mm^2, L = 12 mm; uniaxial stress is exact
    // for both element types.
    let g = grid([6, 5, 8], [1.0, 1.0, 1.5], Matrix3::identity());
    for el in [BoneElement::Hex8, BoneElement::Tet10] {
        let m = model(&g, |_, _, _| 0.0, |_| 1000.0, 0.3, el);
        let k = stiffness(&m, Platens::Sliding);
        let exact = 1000.0 * 30.0 / 12.0;
        assert!((k - exact).abs() < 1e-8 * exact, "{el:?}: {k} vs {exact}");
        // Bonded platens stop the lateral expansion near the ends: stiffer, but less than
        // the fully confined (oedometric) modulus.
        let kb = stiffness(&m, Platens::Bonded);
        let confined = 0.7 / (1.3 * 0.4) * exact;
        assert!(kb > 1.01 * exact && kb < confined, "{el:?}: bonded {kb}");
    }
}

#[test]
fn layers_in_series_and_mirrored_grids() {
    // Two layers along z with nu = 0 (no lateral mismatch): 1/k = L1/(E1 A) + L2/(E2 A),
    // the modulus coming from the image value of each voxel.
    for dir in [
        Matrix3::identity(),
        // Left-handed grid (a NIfTI file with one flipped axis).
        Matrix3::new(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    ] {
        let g = grid([4, 3, 10], [1.0, 1.0, 1.0], dir);
        let m = model(
            &g,
            |_, _, k| if k < 4 { 200.0 } else { 800.0 },
            |v| 5.0 * v,
            0.0,
            BoneElement::Hex8,
        );
        let k = stiffness(&m, Platens::Sliding);
        let a = 12.0;
        let exact = 1.0 / (4.0 / (1000.0 * a) + 6.0 / (4000.0 * a));
        assert!((k - exact).abs() < 1e-8 * exact, "{k} vs {exact}");
        assert_eq!(m.element_value.iter().filter(|&&v| v == 200.0).count(), 48);
    }
}

/// The full fidelity's block-averaged moduli (`FullOptions::subvoxels`): a thin stiff wall
/// running along the load (a cortical shell) inside 3-voxel elements. Averaging the moduli
/// of each block keeps the stiffness of the resolved model exactly (layers in parallel,
/// nu = 0: k = sum E_i A_i / L); averaging the density first and applying the power law
/// (E ~ rho^1.56) loses about a third of the stiffness. Across the load (in series) the
/// mean modulus is an upper bound.
#[test]
fn block_averaged_moduli_keep_a_parallel_wall_exact() {
    let g = grid([12, 12, 12], [1.0, 1.0, 1.0], Matrix3::identity());
    // Walls one voxel thick at both x faces (12000 MPa), core 300 MPa.
    let wall = |i: usize| i == 0 || i == 11;
    // `value(i, k)`: the image value of the voxels at x index i and z index k.
    let build = |value: &dyn Fn(usize, usize) -> f32, e_of: &dyn Fn(f64) -> f64, step: usize| {
        let ni = g.dims[0];
        let data: Vec<f32> = (0..g.len()).map(|n| value(n % ni, n / (ni * 12))).collect();
        voxel_model(
            &Volume::new(g.clone(), data).unwrap(),
            &Volume::filled(g.clone(), 1u16),
            |l| l == 1,
            |_, v| Isotropic {
                e_mpa: e_of(v),
                nu: 0.0,
            },
            &VoxelModelOptions {
                step,
                element: BoneElement::Hex8,
            },
        )
        .unwrap()
    };
    let modulus = |i: usize, _k: usize| if wall(i) { 12000.0f32 } else { 300.0 };
    let exact = (2.0 * 12.0 * 12000.0 + 10.0 * 12.0 * 300.0) / 12.0;
    let fine = stiffness(&build(&modulus, &|e| e, 1), Platens::Sliding);
    assert!((fine - exact).abs() < 1e-8 * exact, "{fine} vs {exact}");
    // 3 x 3 x 3 blocks with the mean of their moduli: 64 elements, the same stiffness.
    let coarse = build(&modulus, &|e| e, 3);
    assert_eq!(coarse.mesh.num_elements(), 64);
    let k = stiffness(&coarse, Platens::Sliding);
    assert!((k - exact).abs() < 1e-8 * exact, "{k} vs {exact}");
    // The same blocks with the mean density through E = 4730 rho^1.56.
    let rho = |e: f64| (e / 4730.0).powf(1.0 / 1.56);
    let density = |i: usize, k: usize| rho(modulus(i, k) as f64) as f32;
    let k_rho = stiffness(
        &build(&density, &|r| 4730.0 * r.powf(1.56), 3),
        Platens::Sliding,
    );
    println!("wall in parallel: exact {exact:.0}, moduli averaged {k:.0}, density averaged {k_rho:.0} N/mm");
    assert!(k_rho < 0.8 * exact, "{k_rho} vs {exact}");
    // The same walls across the load (an endplate under axial load): in series, 1/k =
    // sum L_i / (E_i A). The mean modulus is then an upper bound.
    let across = |_i: usize, k: usize| modulus(k, 0);
    let series = 144.0 / (2.0 / 12000.0 + 10.0 / 300.0);
    let fine = stiffness(&build(&across, &|e| e, 1), Platens::Sliding);
    assert!((fine - series).abs() < 1e-8 * series, "{fine} vs {series}");
    let k = stiffness(&build(&across, &|e| e, 3), Platens::Sliding);
    println!("wall in series: exact {series:.0}, moduli averaged {k:.0} N/mm");
    assert!(k > 1.2 * series, "{k} vs {series}");
}

#[test]
fn end_caps_embed_the_body_and_bad_input_is_an_error() {
    let g = grid([12, 12, 16], [1.0, 1.0, 1.0], Matrix3::identity());
    let mut labels = Volume::filled(g.clone(), 0u16);
    // A body whose top is domed (one voxel higher in the middle) and a "process" label
    // beside it that the caps must not cover.
    for k in 4..11 {
        for j in 3..9 {
            for i in 3..9 {
                labels.set(i, j, k, 1);
            }
        }
    }
    for j in 5..7 {
        for i in 5..7 {
            labels.set(i, j, 11, 1);
        }
    }
    for k in 5..14 {
        labels.set(10, 5, k, 2);
    }
    labels.set(4, 4, 12, 2);
    let counts = add_end_caps(&mut labels, |_, l| l == 1, [5, 6], 2).unwrap();
    // Bottom: 36 columns x 2 slices; top: 36 columns up to slice 13, less the dome and the
    // voxel of the other structure.
    assert_eq!(counts, [72, 36 * 3 - 4 - 1]);
    assert_eq!(labels.get(4, 4, 12), 2, "another structure was overwritten");
    assert_eq!(labels.get(5, 5, 12), 6);
    let values = Volume::filled(g.clone(), 100f32);
    let m = voxel_model(
        &values,
        &labels,
        |l| l == 1 || l >= 5,
        |l, _| Isotropic {
            e_mpa: if l == 1 { 100.0 } else { 2500.0 },
            nu: 0.3,
        },
        &VoxelModelOptions::default(),
    )
    .unwrap();
    let opts = CompressionOptions {
        end_labels: Some([5, 6]),
        ..Default::default()
    };
    let (r, _) = compression_test(&m, &opts).unwrap();
    assert_eq!(r.height_mm, 12.0);
    assert_eq!(r.surface_nodes, [49, 49]);
    // A body touching the end slices has no room for a cap.
    let mut full = Volume::filled(g.clone(), 1u16);
    assert!(add_end_caps(&mut full, |_, l| l == 1, [5, 6], 1).is_err());
    // Unknown end labels; mismatched grids.
    let bad = CompressionOptions {
        end_labels: Some([7, 8]),
        ..Default::default()
    };
    assert!(compression_test(&m, &bad).is_err());
    let other = Volume::filled(grid([12, 12, 15], [1.0; 3], Matrix3::identity()), 0f32);
    assert!(voxel_model(
        &other,
        &labels,
        |l| l == 1,
        |_, _| Isotropic {
            e_mpa: 1.0,
            nu: 0.3
        },
        &VoxelModelOptions::default()
    )
    .is_err());
}

/// The phantom's L4 (landmarks from its label map), compressed along its own axis with
/// the default bone material (Knowles line, Morgan law), optionally cemented.
fn phantom_l4(bmd: f64, cements: &[f64]) -> Vec<VertebraTest> {
    let spec = PhantomSpec {
        levels: LevelRange::new(Level::L3, Level::L5, false).unwrap(),
        bmd_scale: bmd,
        spacing_mm: 1.0,
        ..Default::default()
    };
    let ph = generate(&spec).unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap();
    let v = lm.vertebrae.iter().find(|v| v.level == Level::L4).unwrap();
    cements
        .iter()
        .map(|&c| {
            let t = vertebra_compression(
                &ph.ct,
                &ph.labels,
                v,
                &VertebraTestOptions {
                    cement_fraction: c,
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(t.result.converged);
            t
        })
        .collect()
}

#[test]
#[ignore = "heavy: phantom vertebrae and the VerSe'19 L2 at 1 mm (about 2 min in release); CI runs it"]
fn vertebral_compression_validation() {
    let mut doc = String::from(
        "# Vertebral compression stiffness: voxel FE with moduli from the CT\n\n\
         Regenerate with `cargo test --release -p spinetwin-model --test bone_fe -- --ignored \
         vertebral_compression_validation`. Module `spinetwin_model::bone_fe`: one 8-node \
         hexahedron per voxel (`spinetwin_mesh::VoxelMesh`, largest face-connected component), \
         each with the modulus of its own voxels; the vertebral body is embedded between flat \
         end caps (PMMA, 2500 MPa, nu 0.3); the bottom cap face is held, the top cap face is \
         pressed 0.2 mm along the cranio-caudal axis; stiffness = axial reaction / 0.2 mm \
         (linear, small strain). Bonded platens hold the cap faces in all directions, sliding \
         platens only axially.\n\n",
    );
    // 1. Phantom: osteoporotic bone must be softer because its HU is lower.
    doc += "## Phantom L4, bone density scaled\n\n\
            The phantom's L4 (landmarks from its label map), resampled at 1 mm onto a grid \
            aligned with its anatomical frame, body embedded in 3 mm caps, compressed along \
            its own cranio-caudal axis (`bone_fe::vertebra_compression`), default bone \
            material (HU -> ash density by the Knowles 2016 line -> apparent density -> \
            Morgan 2003 modulus), bonded platens.\n\n\
            | bmd scale | mean HU of the body | stiffness (N/mm) | equations |\n|---|---|---|---|\n";
    let mut prev = 0.0;
    let mut ks = Vec::new();
    for bmd in [0.6, 0.8, 1.0, 1.2] {
        let t = &phantom_l4(bmd, &[0.0])[0];
        let k = t.result.stiffness_n_per_mm;
        doc += &format!(
            "| {bmd} | {:.0} | {k:.0} | {} |\n",
            t.body_mean_hu, t.result.equations
        );
        assert!(
            k > prev,
            "stiffness must rise with density: {k} after {prev}"
        );
        prev = k;
        ks.push(k);
    }
    let ratio = ks[0] / ks[2];
    // The VerSe'19 cohort's range of linear stiffness (appendix A, 160 vertebrae).
    const COHORT: (f64, f64) = (2346.0, 35777.0);
    let inside: Vec<String> = [0.6, 0.8, 1.0, 1.2]
        .iter()
        .zip(&ks)
        .filter(|(_, &k)| (COHORT.0..=COHORT.1).contains(&k))
        .map(|(b, _)| b.to_string())
        .collect();
    doc += &format!(
        "\nStiffness at bmd 0.6 / at 1.0: **{ratio:.2}**. The VerSe'19 cohort (141 subjects, \
         160 vertebrae T1-L5, Walle, Matheson & Boyd, appendix A) spans {:.0} to {:.0} N/mm, \
         median 17538; the phantom's L4 lies inside that range at bmd scale {}. The phantom \
         is stiffer than a real vertebra of the same mean HU because its cortical shell is \
         drawn at 900 + 350 x bmd HU, where a clinical CT blurs the 0.3-0.5 mm shell to a \
         few hundred HU (the VerSe'19 L2 below: its cortical body voxels average \
         181 mg/cm^3, about 270 HU). Bone stiffness of the phantom is therefore an upper \
         bound; the real-CT rows below are the check.\n\n",
        COHORT.0,
        COHORT.1,
        if inside.is_empty() {
            "none".to_string()
        } else {
            inside.join(", ")
        }
    );
    assert!(
        ratio < 0.8,
        "osteoporotic phantom only {ratio} times as stiff"
    );

    // Vertebroplasty on the osteoporotic phantom L4.
    doc += "## Vertebroplasty: cement in the phantom L4 at bmd 0.6\n\n\
            Cement (PMMA, 1937 MPa) replaces the cancellous core around the body centre \
            (`VertebraTestOptions::cement_fraction` of the body volume, kept two voxels \
            inside the cortex). Stresses are element von Mises stresses scaled to a 1 kN \
            axial force.\n\n\
            | cement (% of body) | cement (mm^3) | stiffness (N/mm) | change | body bone von Mises per kN: median, 95th, 99th percentile (MPa) |\n|---|---|---|---|---|\n";
    let runs = phantom_l4(0.6, &[0.0, 0.15, 0.3]);
    let k0 = runs[0].result.stiffness_n_per_mm;
    // The same voxels in every run (cement relabels voxels, it does not remesh): compare
    // the bone that is bone in all runs.
    assert!(runs
        .iter()
        .all(|t| t.model.mesh.num_elements() == runs[0].model.mesh.num_elements()));
    let common: Vec<usize> = (0..runs[0].model.mesh.num_elements())
        .filter(|&e| {
            runs.iter()
                .all(|t| t.model.element_label[e] == local_label::BODY)
        })
        .collect();
    let pct = |t: &VertebraTest, q: f64| {
        let mut v: Vec<f64> = common.iter().map(|&e| t.von_mises_per_kn[e]).collect();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    let mut last = k0;
    for (t, c) in runs.iter().zip([0.0, 15.0, 30.0]) {
        let k = t.result.stiffness_n_per_mm;
        doc += &format!(
            "| {c:.0} | {:.0} | {k:.0} | {:+.1} % | {:.2}, {:.2}, {:.2} |\n",
            t.cement_mm3,
            100.0 * (k / k0 - 1.0),
            pct(t, 0.5),
            pct(t, 0.95),
            pct(t, 0.99)
        );
        if c > 0.0 {
            assert!(k > last, "cement must stiffen the body: {k} after {last}");
        }
        last = k;
    }
    doc += &format!(
        "\nThe stresses are over the {} body elements that are bone in all three runs. \
         Cement stiffens the body, as Liebschner, Rosenberg & Keaveny 2001 (Spine 26:1547) \
         found in voxel FE of vertebroplasty (stiffness rising with fill volume); how the \
         remaining bone's stress changes depends on where it sits (bone in series with the \
         cement column carries more, bone beside it less), which is why the percentiles are \
         reported rather than assumed.\n\n",
        common.len()
    );

    // 2. A real vertebra against an independent voxel-FE pipeline.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/verse004-l2-calibrated");
    if !dir.join("l2_seg.nii.gz").exists() {
        eprintln!("skipping the VerSe'19 L2 part: {} is absent", dir.display());
        doc += "## VerSe'19 sub-verse004 L2\n\nSkipped: ../shared/data/verse004-l2-calibrated \
                was not present when this file was generated.\n";
    } else {
        doc += &verse004_l2();
    }
    doc += "\n";
    doc += &verse012();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/validation/bone_stiffness.md");
    spinetwin_core::atomic::write_bytes(&out, doc.as_bytes()).unwrap();
    eprintln!("{doc}");
}

fn verse004_l2() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/verse004-l2-calibrated");
    let im =
        spinetwin_imaging::nifti::read_volume(&dir.join("l2_density_calibrated.nii.gz")).unwrap();
    let lab = spinetwin_imaging::nifti::read_labels(&dir.join("l2_seg.nii.gz")).unwrap();
    // Published: linear stiffness 12362 N/mm (reaction 2.472 kN at 0.2 mm), FAIM voxel FE,
    // Kopperdahl law E = 2980 rho^1.05 (rho K2HPO4-equivalent, g/cm^3) for trabecular and
    // cortical voxels, nu 0.3, PMMA caps 2500 MPa (labels 5 and 6), 0.2 mm on the top cap.
    const PUBLISHED: f64 = 12362.0;
    let mut s = String::from(
        "## VerSe'19 sub-verse004 L2 against the published voxel-FE benchmark\n\n\
         Data: ../shared/data/verse004-l2-calibrated (density-calibrated CT crop, 1 mm, \
         K2HPO4-equivalent mg/cm^3; labels 1-4 vertebra, 5-6 PMMA caps), from the Bonelab \
         spineFE-benchmark (Walle, Matheson & Boyd; VerSe data, CC BY-SA). Published linear \
         stiffness **12362 N/mm** (FAIM solver, their protocol: Kopperdahl law \
         E = 2980 rho^1.05 for all bone voxels, nu 0.3, PMMA 2500 MPa, 0.2 mm on the top cap; \
         their mesh has 67186 hexahedra and 77892 nodes, 1432 top and 1413 bottom surface \
         nodes).\n\n\
         | model | law | platens | elements | nodes | surface nodes (top, bottom) | equations | stiffness (N/mm) | vs published | solve (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    let published = PublishedProtocol { bins: None };
    let kopperdahl = |l: u16, rho: f64| {
        if l >= 5 {
            CAP_PMMA
        } else {
            published.bone(rho)
        }
    };
    // Our default law on the same density: K2HPO4-equivalent read as ash density.
    let bone = BoneMaterial {
        calibration: spinetwin_model::bone::Calibration::Phantom {
            slope: 0.001,
            intercept: 0.0,
        },
        ..Default::default()
    };
    let morgan = |l: u16, rho: f64| {
        if l >= 5 {
            kopperdahl(l, rho)
        } else {
            Isotropic {
                e_mpa: bone.modulus(rho),
                nu: 0.3,
            }
        }
    };
    // The published protocol's 128 density bins over the bone voxels' range.
    let protocol_bins = PublishedProtocol::binned(
        im.data()
            .iter()
            .zip(lab.data())
            .filter(|(_, &l)| (1..=4).contains(&l))
            .map(|(&v, _)| v as f64),
        128,
    )
    .unwrap();
    let (lo, width, _) = protocol_bins.bins.unwrap();
    let hi = lo + 128.0 * width;
    let binned = |l: u16, rho: f64| {
        if l >= 5 {
            CAP_PMMA
        } else {
            protocol_bins.bone(rho)
        }
    };
    let mut rows: Vec<(String, &str, Platens, f64)> = Vec::new();
    let cases: [(&str, usize, BoneElement, bool); 4] = [
        ("Hex8, 1 mm", 1, BoneElement::Hex8, true),
        ("Hex8, 1 mm", 1, BoneElement::Hex8, false),
        ("Hex8, 2 mm blocks", 2, BoneElement::Hex8, true),
        ("Tet10, 2 mm blocks", 2, BoneElement::Tet10, true),
    ];
    for (name, step, element, kopp) in cases {
        let m = if kopp {
            voxel_model(
                &im,
                &lab,
                |l| (1..=6).contains(&l),
                kopperdahl,
                &VoxelModelOptions { step, element },
            )
        } else {
            voxel_model(
                &im,
                &lab,
                |l| (1..=6).contains(&l),
                morgan,
                &VoxelModelOptions { step, element },
            )
        }
        .unwrap();
        for platens in [Platens::Bonded, Platens::Sliding] {
            if step > 1 && platens == Platens::Sliding {
                continue;
            }
            let (r, _) = compression_test(
                &m,
                &CompressionOptions {
                    platens,
                    end_labels: Some([5, 6]),
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(r.converged);
            let law = if kopp {
                "Kopperdahl (published protocol)"
            } else {
                "ours: ash -> apparent -> Morgan 2003 (default)"
            };
            s += &format!(
                "| {name} | {law} | {platens:?} | {} | {} | {}, {} | {} | {:.0} | {:+.1} % | {:.1} |\n",
                r.elements,
                r.nodes,
                r.surface_nodes[0],
                r.surface_nodes[1],
                r.equations,
                r.stiffness_n_per_mm,
                100.0 * (r.stiffness_n_per_mm / PUBLISHED - 1.0),
                r.solve_time_s
            );
            if step == 1 && kopp {
                // Our mesher must reproduce the published mesh exactly.
                assert_eq!((r.elements, r.nodes), (67186, 77892));
                assert_eq!(r.surface_nodes, [1432, 1413]);
            }
            rows.push((
                name.to_string(),
                if kopp { "k" } else { "m" },
                platens,
                r.stiffness_n_per_mm,
            ));
        }
    }
    let k = rows[0].3;
    let rel = k / PUBLISHED - 1.0;
    s += &format!(
        "\nSame mesh as the published model (element, node and surface-node counts identical). \
         With the published protocol our stiffness is {:+.1} % from theirs (bonded platens). \
         We have not found the cause of the remaining difference. Binning the densities as \
         published does not change it (below); the boundary conditions on the cap faces are \
         not documented in the benchmark (bonded and sliding platens differ by {:.1} % here); \
         and the published material table's bins start at -31 mg/cm^3 while the bone voxels \
         of this file start at -214, which suggests an undocumented preprocessing step. \
         With our default material law the same vertebra gives {:.0} N/mm.\n",
        100.0 * rel,
        100.0 * (rows[0].3 / rows[1].3 - 1.0),
        rows[2].3
    );
    let m = voxel_model(
        &im,
        &lab,
        |l| (1..=6).contains(&l),
        binned,
        &VoxelModelOptions::default(),
    )
    .unwrap();
    let (r, _) = compression_test(
        &m,
        &CompressionOptions {
            end_labels: Some([5, 6]),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.converged);
    s += &format!(
        "With the densities binned as published (128 bins over {lo:.0}..{hi:.0} mg/cm^3, bin \
         centres): {:.0} N/mm ({:+.1} %): binning is not the cause.\n",
        r.stiffness_n_per_mm,
        100.0 * (r.stiffness_n_per_mm / PUBLISHED - 1.0)
    );
    assert!(
        rel.abs() < 0.15,
        "L2 stiffness {k:.0} N/mm is {:.1} % from the published {PUBLISHED}",
        100.0 * rel
    );
    s
}

#[test]
fn implausible_landmarks_are_refused_before_any_solve() {
    let ph = generate(&PhantomSpec {
        levels: LevelRange::new(Level::L3, Level::L5, false).unwrap(),
        spacing_mm: 2.0,
        ..Default::default()
    })
    .unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap();
    let v = lm.vertebrae.iter().find(|v| v.level == Level::L4).unwrap();
    // A body not separated from its posterior elements shows as a tiny endplate.
    let mut small = v.clone();
    small.superior_endplate.area_mm2 = 150.0;
    let e = vertebra_compression(&ph.ct, &ph.labels, &small, &VertebraTestOptions::default())
        .err()
        .expect("a 150 mm^2 endplate must be refused");
    assert!(
        e.to_string().contains("L4: the landmarks look wrong"),
        "{e}"
    );
    // A body axis 40 deg off the endplate normals.
    let mut tilted = v.clone();
    let (z, y) = (Vector3::from(v.frame.z), Vector3::from(v.frame.y));
    let t = 40f64.to_radians();
    let (zr, yr) = (z * t.cos() + y * t.sin(), y * t.cos() - z * t.sin());
    tilted.frame.z = [zr.x, zr.y, zr.z];
    tilted.frame.y = [yr.x, yr.y, yr.z];
    let e = vertebra_compression(&ph.ct, &ph.labels, &tilted, &VertebraTestOptions::default())
        .err()
        .expect("a 40 deg tilted axis must be refused");
    assert!(
        e.to_string().contains("deg from the endplate normals"),
        "{e}"
    );
    // Landmarks of one vertebra with another's label (a label map that is not the one the
    // landmarks came from).
    let mut other = v.clone();
    other.label = Level::L3.verse_label();
    let e = vertebra_compression(&ph.ct, &ph.labels, &other, &VertebraTestOptions::default())
        .err()
        .expect("landmarks of another vertebra must be refused");
    assert!(
        e.to_string().contains("do not belong to this label map"),
        "{e}"
    );
}

/// The VerSe'19 sub-verse012 CT (HU) with its expert vertebra masks, end to end through our
/// landmarks and default material: each level's stiffness, or why it was refused.
fn verse012() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/verse012-t10-l3-sagittal");
    let ct_path = dir.join("sub-verse012_ct.nii.gz");
    if !ct_path.exists() {
        return "## VerSe'19 sub-verse012 from HU\n\nSkipped: \
                ../shared/data/verse012-t10-l3-sagittal was not present.\n"
            .into();
    }
    let ct = spinetwin_imaging::nifti::read_volume(&ct_path).unwrap();
    let labels =
        spinetwin_imaging::nifti::read_labels(&dir.join("sub-verse012_seg-vert_msk.nii.gz"))
            .unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ct, &labels).unwrap();
    // Published linear stiffness (reaction at 0.2 mm / 0.2 mm) of this subject, appendix A.
    let published = |l: Level| match l {
        Level::T12 => Some(19260.0),
        Level::L2 => Some(20140.0),
        _ => None,
    };
    let mut s = String::from(
        "## VerSe'19 sub-verse012 from HU, end to end\n\n\
         The CT in HU (3 x 1 x 1 mm sagittal slab) with the expert vertebra masks (no \
         spinal-canal label), landmarks by `spinetwin_segment::landmarks`, default material \
         (Knowles line, Morgan law), 1 mm. The benchmark's appendix A gives this subject's \
         linear stiffness for T12 (19260 N/mm) and L2 (20140 N/mm; phantomless vBMD \
         121 mg/cm^3).\n\n| level | result | published |\n|---|---|---|\n",
    );
    let mut refused = 0;
    let mut gaps = Vec::new();
    for v in &lm.vertebrae {
        let r = vertebra_compression(&ct, &labels, v, &VertebraTestOptions::default());
        let cell = match &r {
            Ok(t) => {
                let k = t.result.stiffness_n_per_mm;
                if let Some(p) = published(v.level) {
                    gaps.push(format!(
                        "{} {:+.0} %",
                        v.level.name(),
                        100.0 * (k / p - 1.0)
                    ));
                }
                format!("{k:.0} N/mm")
            }
            Err(e) => {
                refused += 1;
                format!("refused: {e}")
            }
        };
        s += &format!(
            "| {} | {cell} | {} |\n",
            v.level.name(),
            published(v.level).map_or("-".into(), |k| format!("{k:.0} N/mm"))
        );
    }
    s += &format!(
        "\n{refused} of {} vertebrae refused (the test refuses landmarks with a tiny endplate \
         or an axis off the endplate normals, `bone_fe::MIN_ENDPLATE_AREA_MM2`, \
         `MAX_AXIS_ENDPLATE_DEG`; without a canal label the landmarks take the canal from \
         the vertebral foramina of the masks). Against the published values: {}. Not a \
         like-for-like check: our default material (Knowles HU line, Morgan law on apparent \
         density) is stiffer than the published protocol's (phantomless calibration, \
         Kopperdahl law; +12 % on the sub-verse004 L2 above, same density image), this scan \
         has no phantomless calibration here, and its 3 mm slices blur the cortex. Right \
         order of magnitude, not yet a validation.\n",
        lm.vertebrae.len(),
        if gaps.is_empty() {
            "none tested".to_string()
        } else {
            gaps.join(", ")
        }
    );
    s
}

#[test]
fn published_protocol_moduli_match_its_material_table() {
    // Entries of the published linear model's material table (Bonelab spineFE-benchmark,
    // sub-verse004 L2): density (g/cm^3) -> modulus (MPa).
    let p = PublishedProtocol { bins: None };
    for (rho, e) in [(0.0066, 15.2484), (0.2020, 555.6482), (1.8855, 5799.7644)] {
        let m = p.modulus(1000.0 * rho);
        // The table prints densities to 4 decimals: E ~ rho^1.05 inherits that rounding.
        let tol = 1.05 * 0.5e-4 / rho + 1e-5;
        assert!((m - e).abs() < tol * e, "{rho} g/cm^3: {m} vs {e} MPa");
    }
    assert_eq!(p.modulus(-23.5), 1e-4);
    // Binned: every density of a bin gets its centre's modulus.
    let b = PublishedProtocol::binned([0.0, 1280.0].into_iter(), 128).unwrap();
    assert_eq!(b.modulus(12.0), p.modulus(15.0));
    assert_eq!(b.modulus(3.0), p.modulus(5.0));
    assert_eq!(b.modulus(1280.0), p.modulus(1275.0));
    assert!(PublishedProtocol::binned(std::iter::empty(), 128).is_none());
}
