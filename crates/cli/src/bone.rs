//! `spinetwin bone`: deformable vertebrae from the CT (the bone half of the full fidelity):
//! each chosen vertebra is meshed from its voxels with moduli from its HU, embedded in PMMA
//! caps, optionally cemented (vertebroplasty), and compressed along its own axis. Writes the
//! axial stiffness and stress statistics per vertebra, and a VTU per vertebra for ParaView.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use spinetwin_anatomy::Level;
use spinetwin_fem::vtu::{write_vtu, VtuData};
use spinetwin_model::bone::{measure_reference_tissues, BoneMaterial, Calibration};
use spinetwin_model::bone_fe::{
    local_label, vertebra_compression, BoneElement, Platens, VertebraTestOptions, VoxelModelOptions,
};
use std::path::PathBuf;
use std::time::Instant;

use crate::output::{check_not_overlapping, check_writable, write_dir_atomically, write_json};

/// Arguments of `spinetwin bone`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Compress segmented vertebrae of a CT along their own axis, as in \
the vertebral strength test: each vertebra is resampled onto a grid aligned with its \
anatomical frame, meshed voxel by voxel with moduli from its HU (HU -> density -> Morgan \
2003 modulus), its body embedded between PMMA caps and pressed 0.2 mm. --cement F fills \
the fraction F of the body with bone cement (vertebroplasty; PMMA unless --cement-modulus \
says otherwise). Writes OUT/bone.json, \
OUT/bone.csv and OUT/LEVEL.vtu (modulus, HU, label and von Mises stress per kN)."
)]
pub struct Args {
    /// The CT: a DICOM folder or file(s), or a NIfTI file.
    #[arg(required = true)]
    pub ct: Vec<PathBuf>,
    /// Output folder (new or empty unless --force).
    #[arg(long, short)]
    pub out: PathBuf,
    /// A label map (NIfTI, VerSe numbering) to use instead of segmenting.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Levels to test (e.g. L1,L4); default: every lumbar vertebra found.
    #[arg(long, value_delimiter = ',')]
    pub level: Vec<String>,
    /// Fraction of the vertebral body filled with cement (0 to 0.9).
    #[arg(long, default_value_t = 0.0)]
    pub cement: f64,
    /// Young's modulus of the cement (MPa, 100 to 5000; default PMMA, 1937).
    #[arg(long, default_value_t = spinetwin_model::bone_fe::BONE_CEMENT.e_mpa)]
    pub cement_modulus: f64,
    /// HU to density: `knowles` (default; the K2HPO4-equivalent line of Knowles 2016),
    /// `phantomless` (fitted to air, fat, muscle and cortical bone found in the CT), or
    /// `density` (the image already holds K2HPO4-equivalent density in mg/cm^3).
    #[arg(long, default_value = "knowles")]
    pub calibration: String,
    /// Voxel size of the vertebra-aligned model grid (mm).
    #[arg(long, default_value_t = 1.0)]
    pub spacing: f64,
    /// Element type: hex8 (one per voxel) or tet10 (six per block of --step voxels).
    #[arg(long, default_value = "hex8")]
    pub element: String,
    /// Voxels per element edge.
    #[arg(long, default_value_t = 1)]
    pub step: usize,
    /// Platens: bonded (default) or sliding.
    #[arg(long, default_value = "bonded")]
    pub platens: String,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct Row {
    level: String,
    stiffness_n_per_mm: f64,
    body_mean_hu: f64,
    body_mm3: f64,
    cement_mm3: f64,
    /// Von Mises stress in the body's bone at a 1 kN axial force: median, 95th and 99th
    /// percentile (MPa).
    body_von_mises_per_kn: [f64; 3],
    elements: usize,
    equations: usize,
    /// Resampling, meshing and solving (s).
    seconds: f64,
}

#[derive(Serialize)]
struct Report {
    spinetwin_version: &'static str,
    calibration: Calibration,
    cement_fraction: f64,
    cement_modulus_mpa: f64,
    element: String,
    spacing_mm: f64,
    platens: String,
    vertebrae: Vec<Row>,
    notes: Vec<String>,
}

/// Runs `spinetwin bone`.
pub fn run(args: Args) -> Result<()> {
    check_writable(&args.out, args.force)?;
    let mut inputs = args.ct.clone();
    inputs.extend(args.labels.clone());
    check_not_overlapping(&args.out, &inputs)?;
    let element = match args.element.to_ascii_lowercase().as_str() {
        "hex8" => BoneElement::Hex8,
        "tet10" => BoneElement::Tet10,
        other => bail!("--element {other:?}: use hex8 or tet10"),
    };
    let platens = match args.platens.to_ascii_lowercase().as_str() {
        "bonded" => Platens::Bonded,
        "sliding" => Platens::Sliding,
        other => bail!("--platens {other:?}: use bonded or sliding"),
    };
    if args.step == 0 {
        bail!("--step must be at least 1 voxel");
    }
    let (img, labels, seg_warnings) =
        crate::twin::read_ct_and_labels(&args.ct, args.labels.as_deref())?;
    for w in &seg_warnings {
        eprintln!("warning: segmentation: {w}");
    }
    let calibration = match args.calibration.to_ascii_lowercase().as_str() {
        "knowles" => Calibration::Knowles2016,
        "phantomless" => {
            let t = measure_reference_tissues(&img.volume, &labels)?;
            Calibration::phantomless(&t).context("phantomless calibration")?
        }
        "density" => Calibration::Phantom {
            slope: 0.001,
            intercept: 0.0,
        },
        other => bail!("--calibration {other:?}: use knowles, phantomless or density"),
    };
    let landmarks = spinetwin_segment::landmarks::landmarks(&img.volume, &labels)
        .context("finding the landmarks")?;
    let wanted: Vec<Level> = if args.level.is_empty() {
        landmarks
            .vertebrae
            .iter()
            .map(|v| v.level)
            .filter(|l| l.name().starts_with('L'))
            .collect()
    } else {
        args.level
            .iter()
            .map(|s| {
                s.parse::<Level>()
                    .map_err(|e| anyhow::anyhow!("--level {s:?}: {e}"))
            })
            .collect::<Result<_>>()?
    };
    let found: Vec<String> = landmarks
        .vertebrae
        .iter()
        .map(|v| v.level.name().to_string())
        .collect();
    for l in &wanted {
        if !landmarks.vertebrae.iter().any(|v| v.level == *l) {
            bail!(
                "--level {}: that vertebra is not in the segmentation (found: {})",
                l.name(),
                found.join(" ")
            );
        }
    }
    if wanted.is_empty() {
        bail!(
            "no lumbar vertebra in the segmentation (found: {}); name levels with --level",
            found.join(" ")
        );
    }
    let options = VertebraTestOptions {
        spacing_mm: args.spacing,
        mesh: VoxelModelOptions {
            step: args.step,
            element,
        },
        bone: BoneMaterial {
            calibration: calibration.clone(),
            ..Default::default()
        },
        cement_fraction: args.cement,
        cement: spinetwin_model::bone::Isotropic {
            e_mpa: args.cement_modulus,
            nu: spinetwin_model::bone_fe::BONE_CEMENT.nu,
        },
        platens,
        ..Default::default()
    };
    let bar = spinetwin_core::progress::bar(wanted.len() as u64, "vertebrae");
    let mut rows = Vec::new();
    let mut meshes = Vec::new();
    for level in &wanted {
        let v = landmarks
            .vertebrae
            .iter()
            .find(|v| v.level == *level)
            .expect("checked above");
        bar.set_message(level.name().to_string());
        let t0 = Instant::now();
        let t = vertebra_compression(&img.volume, &labels, v, &options)
            .with_context(|| format!("compressing {}", level.name()))?;
        let pct = |q| {
            t.stress_percentile(local_label::BODY, q)
                .unwrap_or(f64::NAN)
        };
        rows.push(Row {
            level: level.name().to_string(),
            stiffness_n_per_mm: t.result.stiffness_n_per_mm,
            body_mean_hu: t.body_mean_hu,
            body_mm3: t.body_mm3,
            cement_mm3: t.cement_mm3,
            body_von_mises_per_kn: [pct(0.5), pct(0.95), pct(0.99)],
            elements: t.result.elements,
            equations: t.result.equations,
            seconds: t0.elapsed().as_secs_f64(),
        });
        // Patient-frame mesh and fields for ParaView.
        let mesh = t.patient_mesh();
        let [_, x, y, z] = t.frame;
        let u: Vec<[f64; 3]> = t
            .displacements
            .iter()
            .map(|d| [0, 1, 2].map(|a| d[0] * x[a] + d[1] * y[a] + d[2] * z[a]))
            .collect();
        let data = VtuData {
            point_vectors: vec![("displacement".into(), u)],
            cell_scalars: vec![
                (
                    "label".into(),
                    t.model.element_label.iter().map(|&l| l as f64).collect(),
                ),
                ("image_value".into(), t.model.element_value.clone()),
                ("youngs_modulus".into(), t.model.material.youngs.clone()),
                ("von_mises_per_kN".into(), t.von_mises_per_kn.clone()),
            ],
            cell_tensors: vec![],
            cell_vectors: vec![],
            point_scalars: vec![],
        };
        let section =
            spinetwin_scenario::bone::section_image(&t, args.spacing * args.step as f64, None);
        meshes.push((level.name().to_string(), mesh, data, section));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let report = Report {
        spinetwin_version: env!("CARGO_PKG_VERSION"),
        calibration,
        cement_fraction: args.cement,
        cement_modulus_mpa: args.cement_modulus,
        element: args.element.to_ascii_lowercase(),
        spacing_mm: args.spacing,
        platens: args.platens.to_ascii_lowercase(),
        vertebrae: rows,
        notes: vec![
            "Linear elastic, small strain. Stiffness = axial reaction / 0.2 mm imposed on the \
             top cap face (bottom cap face held). Labels in the VTU: 1 body bone, 2 posterior \
             elements, 3 cement, 5 and 6 PMMA caps."
                .into(),
            "LEVEL_section.png: the mid-sagittal section (anterior left, cranial up); left \
             half Young's modulus (black 0 to white at the largest bone modulus; cement \
             orange, caps pale blue), right half von Mises stress per kN (blue 0 to red at \
             the 99th percentile of the body's bone)."
                .into(),
        ],
    };
    let mut csv = String::from(
        "level,stiffness_n_per_mm,body_mean_hu,body_mm3,cement_mm3,vm_per_kn_p50,vm_per_kn_p95,vm_per_kn_p99,elements,equations,seconds\n",
    );
    for r in &report.vertebrae {
        csv += &format!(
            "{},{:.1},{:.1},{:.0},{:.0},{:.4},{:.4},{:.4},{},{},{:.2}\n",
            r.level,
            r.stiffness_n_per_mm,
            r.body_mean_hu,
            r.body_mm3,
            r.cement_mm3,
            r.body_von_mises_per_kn[0],
            r.body_von_mises_per_kn[1],
            r.body_von_mises_per_kn[2],
            r.elements,
            r.equations,
            r.seconds
        );
    }
    write_dir_atomically(&args.out, |dir| {
        write_json(&dir.join("bone.json"), &report)?;
        spinetwin_core::atomic::write_bytes(&dir.join("bone.csv"), csv.as_bytes())?;
        for (name, mesh, data, section) in &meshes {
            write_vtu(&dir.join(format!("{name}.vtu")), mesh, data)?;
            section.write_png(&dir.join(format!("{name}_section.png")))?;
        }
        Ok(())
    })?;
    for r in &report.vertebrae {
        println!(
            "{}: stiffness {:.0} N/mm, body {:.0} HU{}, bone von Mises at 1 kN: median {:.2} MPa, 95th percentile {:.2} MPa",
            r.level,
            r.stiffness_n_per_mm,
            r.body_mean_hu,
            if r.cement_mm3 > 0.0 {
                format!(", {:.1} cm^3 cement", r.cement_mm3 / 1000.0)
            } else {
                String::new()
            },
            r.body_von_mises_per_kn[0],
            r.body_von_mises_per_kn[1]
        );
    }
    println!("-> {}", args.out.display());
    Ok(())
}
