//! `spinetwin phantom`: write the synthetic lumbar CT with its ground truth.

use crate::output::{check_writable, write_dir_atomically, write_json};
use anyhow::{Context, Result};
use nalgebra::Vector3;
use spinetwin_anatomy::{Level, LevelRange};
use spinetwin_imaging::dicom::{self, WriteMeta};
use spinetwin_imaging::preview::{render_slice, Plane, Window};
use spinetwin_imaging::{nifti, uid, Modality, Volume};
use spinetwin_phantom::{generate, FacetJoints, Phantom, PhantomSpec};
use std::path::{Path, PathBuf};

/// Arguments of `spinetwin phantom`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Write a synthetic CT of the lumbar spine built from parametric vertebrae with \
published dimensions (Panjabi 1992), with its ground truth. OUT receives ct.nii.gz (HU), \
labels.nii.gz (VerSe numbering: 19 = T12, 20-24 = L1-L5, 25 = L6, 26 = sacrum; discs 100 + \
label of the vertebra above; canal 200), truth.json (landmarks and angles in LPS mm and \
degrees), dicom/ (one CT file per slice) and preview/ (PNG slices). Deterministic for a seed."
)]
pub struct Args {
    /// Output folder (created; must be new or empty unless --force).
    pub out: PathBuf,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Skip the DICOM series (NIfTI, truth and previews only).
    #[arg(long)]
    pub no_dicom: bool,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
}

/// Phantom parameters, shared with `demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct SpecArgs {
    /// Vertebrae to include, cranial to caudal (e.g. T12-S1, L1-L5, L1-S1).
    #[arg(long, default_value = "T12-S1")]
    pub levels: LevelRange,
    /// Lumbar lordosis L1-S1 in degrees.
    #[arg(long, default_value_t = 45.0)]
    pub lordosis: f64,
    /// Coronal Cobb angle of a lumbar scoliosis in degrees (0 = straight).
    #[arg(long, default_value_t = 0.0)]
    pub scoliosis_cobb: f64,
    /// Trabecular bone density relative to a healthy young adult (0.6 ~ osteoporotic).
    #[arg(long, default_value_t = 1.0)]
    pub bmd_scale: f64,
    /// Image noise, standard deviation in HU.
    #[arg(long, default_value_t = 20.0)]
    pub noise: f64,
    /// Isotropic voxel size in mm.
    #[arg(long, default_value_t = 1.0)]
    pub spacing: f64,
    /// Random seed (same seed, same phantom).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Facet joints near mid-disc height (the default the segmentation is tuned on) or at the
    /// height of the lower vertebra's upper endplate with long inferior articular processes,
    /// as measured on real spines.
    #[arg(long, value_enum, default_value_t = FacetJointsArg::MidDisc)]
    pub facet_joints: FacetJointsArg,
    /// Slice thickness in mm, a whole multiple of the spacing (e.g. 3 with spacing 1): the
    /// volume is reconstructed in slabs of that thickness, as clinical 2-5 mm CTs are.
    #[arg(long)]
    pub slice_thickness: Option<f64>,
    /// Levels with bilateral titanium pedicle screws and rods (e.g. L4,L5), written into the
    /// CT as metal with streak artefacts, to test how a pipeline copes with implants.
    #[arg(long, value_delimiter = ',')]
    pub screws: Vec<Level>,
}

/// Command-line names of [`FacetJoints`].
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum FacetJointsArg {
    /// Joints near mid-disc height.
    MidDisc,
    /// Joints at the lower vertebra's upper endplate, long inferior processes.
    Anatomical,
}

impl SpecArgs {
    /// The phantom specification these arguments describe.
    pub fn to_spec(&self) -> PhantomSpec {
        PhantomSpec {
            levels: self.levels.clone(),
            lordosis_deg: self.lordosis,
            scoliosis_cobb_deg: self.scoliosis_cobb,
            bmd_scale: self.bmd_scale,
            noise_hu: self.noise,
            spacing_mm: self.spacing,
            seed: self.seed,
            facet_joints: match self.facet_joints {
                FacetJointsArg::MidDisc => FacetJoints::MidDisc,
                FacetJointsArg::Anatomical => FacetJoints::Anatomical,
            },
            slice_thickness_mm: self.slice_thickness,
            screws: self.screws.clone(),
        }
    }
}

/// Runs `spinetwin phantom`.
pub fn run(args: Args) -> Result<()> {
    check_writable(&args.out, args.force)?;
    let spec = args.spec.to_spec();
    spec.validate().context("invalid phantom parameters")?;
    let pb = spinetwin_core::progress::spinner("generating phantom");
    let ph = generate(&spec).context("generating the phantom")?;
    pb.finish_and_clear();
    write_phantom(&ph, &spec, &args.out, !args.no_dicom)?;
    let d = ph.ct.dims();
    let s = ph.ct.grid().spacing;
    println!(
        "phantom {} written to {}: {}x{}x{} voxels of {:.2} x {:.2} x {:.2} mm, levels {}",
        spec.levels,
        args.out.display(),
        d[0],
        d[1],
        d[2],
        s[0],
        s[1],
        s[2],
        spec.levels
    );
    Ok(())
}

/// Writes the phantom's files into `out` (atomically as a whole folder).
pub fn write_phantom(ph: &Phantom, spec: &PhantomSpec, out: &Path, with_dicom: bool) -> Result<()> {
    write_dir_atomically(out, |dir| {
        nifti::write_volume(&dir.join("ct.nii.gz"), &ph.ct, nifti::NiftiDtype::Int16)
            .context("writing ct.nii.gz")?;
        nifti::write_labels(&dir.join("labels.nii.gz"), &ph.labels)
            .context("writing labels.nii.gz")?;
        write_json(&dir.join("truth.json"), &ph.truth).context("writing truth.json")?;
        if with_dicom {
            let meta = phantom_dicom_meta(spec);
            let pb = spinetwin_core::progress::spinner("writing DICOM series");
            dicom::write_series(&ph.ct, &meta, &dir.join("dicom"))
                .context("writing the DICOM series")?;
            pb.finish_and_clear();
        }
        write_previews(&ph.ct, &ph.labels, &dir.join("preview"))?;
        Ok(())
    })
    .with_context(|| format!("writing the phantom to {}", out.display()))
}

/// DICOM identity of a phantom: obviously synthetic, UIDs derived from the seed.
fn phantom_dicom_meta(spec: &PhantomSpec) -> WriteMeta {
    let mut key = format!(
        "spinetwin-phantom:{}:{}:{}:{}:{}:{}:{}",
        spec.levels,
        spec.lordosis_deg,
        spec.scoliosis_cobb_deg,
        spec.bmd_scale,
        spec.noise_hu,
        spec.spacing_mm,
        spec.seed
    );
    // Options added later enter the key only when not at their default, so that the default
    // phantom keeps its UIDs and a different image never shares them.
    if spec.facet_joints != FacetJoints::MidDisc {
        key.push_str(":facets-anatomical");
    }
    if let Some(t) = spec.slice_thickness_mm {
        key.push_str(&format!(":slice-{t}"));
    }
    if !spec.screws.is_empty() {
        let mut names: Vec<&str> = spec.screws.iter().map(|l| l.name()).collect();
        names.sort_unstable();
        names.dedup();
        key.push_str(&format!(":screws-{}", names.join("-")));
    }
    WriteMeta {
        patient_name: "SPINETWIN^PHANTOM".into(),
        patient_id: format!("PHANTOM-{}", spec.seed),
        series_description: format!("spinetwin synthetic lumbar phantom {}", spec.levels),
        study_uid: uid::from_hash(&[key.as_bytes(), b"study"]),
        series_uid: uid::from_hash(&[key.as_bytes(), b"series"]),
        modality: Modality::Ct,
        body_part: Some("LSPINE".into()),
        ..WriteMeta::default()
    }
}

/// LPS centroid (mm) of the voxels carrying `label`.
pub fn label_centroid(labels: &Volume<u16>, label: u16) -> Option<Vector3<f64>> {
    let g = labels.grid();
    let [nx, ny, _] = g.dims;
    let (mut sum, mut n) = (Vector3::zeros(), 0usize);
    for (idx, &l) in labels.data().iter().enumerate() {
        if l == label {
            let (i, j, k) = (idx % nx, (idx / nx) % ny, idx / (nx * ny));
            sum += Vector3::new(i as f64, j as f64, k as f64);
            n += 1;
        }
    }
    (n > 0).then(|| g.index_to_world(sum / n as f64))
}

/// Mid-sagittal, coronal and axial (through L3, or the middle level) PNG slices in the bone
/// window, plain and with labels, plus an axial soft-tissue view.
pub fn write_previews(ct: &Volume<f32>, labels: &Volume<u16>, dir: &Path) -> Result<()> {
    let centre_level = [Level::L3, Level::L2, Level::L4, Level::L1, Level::L5]
        .into_iter()
        .find_map(|l| label_centroid(labels, l.verse_label()));
    let (lo, hi) = ct.grid().world_bounds();
    let through = centre_level.unwrap_or((lo + hi) / 2.0);
    let views = [
        ("sagittal", Plane::Sagittal, Window::BONE),
        ("coronal", Plane::Coronal, Window::BONE),
        ("axial", Plane::Axial, Window::BONE),
    ];
    for (name, plane, window) in views {
        render_slice(ct, plane, through, window, None)
            .write_png(&dir.join(format!("{name}.png")))?;
        render_slice(ct, plane, through, window, Some(labels))
            .write_png(&dir.join(format!("{name}_labels.png")))?;
    }
    render_slice(ct, Plane::Axial, through, Window::SOFT_TISSUE, None)
        .write_png(&dir.join("axial_soft_tissue.png"))?;
    Ok(())
}
