//! `spinetwin segment`: label the vertebrae, discs and canal of a lumbar CT.

use crate::output::{check_not_overlapping, check_writable, write_dir_atomically, write_json};
use anyhow::{bail, Context, Result};
use nalgebra::Vector3;
use serde::Serialize;
use spinetwin_imaging::preview::{render_slice, Plane, Window};
use spinetwin_imaging::{nifti, open, Modality, OpenOptions, Volume};
use spinetwin_mesh::io::{write_glb, GlbStructure, MeshFormat};
use spinetwin_mesh::{surface_of_label, LabelSurface, SurfaceOptions};
use spinetwin_segment::{segment, LevelReport, SegmentOptions, Segmentation, StageTiming};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `spinetwin segment`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Label the vertebrae (VerSe numbering: 19 = T12, 20-24 = L1-L5, \
26 = sacrum), the discs (100 + label of the vertebra above) and the spinal canal (200) of a \
lumbar CT, with a classical pipeline (adaptive bone threshold, canal tracking, disc spaces, \
vertebra separation, levels counted up from the sacrum and cross-checked by the ribs, or \
counted down from the last rib-bearing vertebra, T12, when the sacrum is not in view). OUT \
receives labels.nii.gz, \
segment.json (levels, volumes, HU, confidence, warnings, timings, mesh checks), overview PNGs \
and surface meshes in patient LPS mm: meshes/<LEVEL>.stl per vertebra and meshes/<L4-L5>.stl \
per disc (closed, smoothed, decimated) and meshes/spine.glb with one named node per \
structure. Check the overview: segment.json says what the level names rest on \
(level_basis: sacrum, sacrum and ribs, ribs, assumed, model, or given: --levels or --labels)."
)]
pub struct Args {
    /// The CT (a DICOM folder or file(s), or a NIfTI file), then the output folder unless
    /// --out gives it: `spinetwin segment CT OUT`.
    #[arg(required = true, value_name = "CT... [OUT]")]
    pub ct: Vec<PathBuf>,
    /// Output folder (new or empty unless --force); without it the last argument is.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// DICOM series to use when the input holds several.
    #[arg(long)]
    pub series: Option<String>,
    /// Bone threshold in HU (default: adapted to the scan's histogram).
    #[arg(long)]
    pub bone_threshold: Option<f32>,
    /// Replace OUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// File format of the per-structure surfaces in OUT/meshes (stl, ply or obj);
    /// OUT/meshes/spine.glb is written in any case.
    #[arg(long, default_value = "stl", value_name = "stl|ply|obj")]
    pub mesh_format: MeshFormat,
    /// Triangles per structure after decimation.
    #[arg(long, default_value_t = DEFAULT_TARGET_TRIANGLES, value_name = "N")]
    pub target_triangles: usize,
    /// Write no surface meshes.
    #[arg(long)]
    pub no_meshes: bool,
    /// Label with a learned model (ONNX, its JSON card beside it: model.onnx -> model.json)
    /// instead of the classical pipeline; the report says so. Needs a spinetwin built with
    /// `--features onnx`.
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    /// The levels the scan shows, cranial to caudal (e.g. L1-L5, T12-S1; an L6 is named):
    /// the vertebrae found are named so instead of by counting (the user's reading
    /// overrides; a different number of vertebrae is an error).
    #[arg(long, value_name = "RANGE")]
    pub levels: Option<spinetwin_anatomy::LevelRange>,
    /// A corrected label map of this CT (NIfTI, VerSe numbering) fed back in: the report,
    /// overview and meshes are made from it instead of segmenting.
    #[arg(long, value_name = "LABELS.nii.gz", conflicts_with_all = ["model", "bone_threshold"])]
    pub labels: Option<PathBuf>,
}

/// One structure's surface in `segment.json`.
#[derive(Serialize)]
pub struct MeshSummary {
    /// Structure name ("L4", disc "L4-L5").
    pub name: String,
    /// Its label in the label map.
    pub label: u16,
    /// File, relative to the output folder.
    pub file: String,
    /// Triangles written.
    pub triangles: usize,
    /// Triangles straight out of extraction, before decimation.
    pub extracted_triangles: usize,
    /// Enclosed volume of the surface (mm^3).
    pub volume_mm3: f64,
    /// Volume of the labelled voxels (mm^3).
    pub voxel_volume_mm3: f64,
    /// Surface volume against voxel volume, percent.
    pub volume_error_percent: f64,
    /// Every edge shared by exactly two triangles.
    pub closed: bool,
    /// Single fan around every vertex.
    pub manifold: bool,
    /// Separate shells.
    pub components: usize,
    /// Intersecting triangle pairs (without a shared vertex).
    pub self_intersections: usize,
    /// Extraction + smoothing + decimation + checks (s).
    pub seconds: f64,
}

/// The `meshes` section of `segment.json`.
#[derive(Serialize)]
pub struct MeshesReport {
    /// Format of the per-structure files.
    pub format: String,
    /// Requested triangles per structure.
    pub target_triangles: usize,
    /// All structures in one glTF binary, relative to the output folder.
    pub glb: String,
    /// Per structure.
    pub structures: Vec<MeshSummary>,
}

/// A structure to mesh: name and label.
pub(crate) struct Structure {
    name: String,
    label: u16,
    color: [f32; 4],
    /// Its voxels in the label map.
    voxels: usize,
}

/// What `segment.json` holds.
#[derive(Serialize)]
pub struct SegmentReport {
    /// The levels found, cranial to caudal.
    pub levels: Vec<LevelReport>,
    /// Bone threshold used (HU); null where no threshold was (a learned model, or labels
    /// given).
    pub bone_threshold_hu: f32,
    /// Whether the sacrum was found (levels counted up from it).
    pub sacrum_found: bool,
    /// What the level names rest on: the sacrum, the sacrum confirmed by the ribs, the ribs
    /// alone (last rib-bearing vertebra = T12), an assumption (caudal-most = L5), a learned
    /// model, or the user (--levels, --labels).
    pub level_basis: spinetwin_segment::LevelBasis,
    /// Whole-scan warnings (import and segmentation).
    pub warnings: Vec<String>,
    /// Time per stage (s).
    pub timings: Vec<StageTiming>,
    /// Surface meshes (absent with --no-meshes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meshes: Option<MeshesReport>,
}

impl SegmentReport {
    /// The report of a segmentation, with warnings from loading the scan first.
    pub fn new(seg: &Segmentation, import_warnings: &[String]) -> Self {
        SegmentReport {
            levels: seg.levels.clone(),
            bone_threshold_hu: seg.bone_threshold_hu,
            sacrum_found: seg.sacrum_found,
            level_basis: seg.level_basis,
            warnings: import_warnings
                .iter()
                .chain(&seg.warnings)
                .cloned()
                .collect(),
            timings: seg.timings.clone(),
            meshes: None,
        }
    }
}

/// Runs `spinetwin segment`.
pub fn run(mut args: Args) -> Result<()> {
    let (ct, out) = crate::inputs::split_out("segment", args.ct, args.out.take())?;
    args.ct = ct;
    check_writable(&out, args.force)?;
    check_not_overlapping(&out, &args.ct)?;
    let img = open(
        &args.ct,
        &OpenOptions {
            series_uid: args.series.clone(),
            ..Default::default()
        },
    )?;
    let input = args.ct[0].display();
    if img.modality != Modality::Ct {
        let what = match &img.modality {
            Modality::Other(code) if code == "unknown" => {
                "not recognised as CT (its values do not look like Hounsfield units)".to_string()
            }
            m => format!("a {} scan", m.code()),
        };
        bail!("{input}: the scan is {what}, but segmentation needs a CT in Hounsfield units; give the CT series");
    }
    let opts = SegmentOptions {
        bone_threshold_hu: args.bone_threshold,
        model: args.model.clone(),
        ..Default::default()
    };
    let pb = spinetwin_core::progress::spinner("segmenting");
    let t = Instant::now();
    let mut seg = match &args.labels {
        Some(p) => {
            let l = spinetwin_imaging::nifti::read_labels(p)
                .with_context(|| format!("{}: could not read the label map", p.display()))?;
            let l = if l.grid() != img.volume.grid() {
                l.resample(
                    img.volume.grid(),
                    spinetwin_imaging::Interpolation::Nearest,
                    0,
                )
            } else {
                l
            };
            spinetwin_segment::given::from_label_map(&img.volume, l)
                .with_context(|| format!("{}: label map", p.display()))?
        }
        None => {
            segment(&img.volume, &opts).with_context(|| format!("{input}: segmentation failed"))?
        }
    };
    if let Some(range) = &args.levels {
        spinetwin_segment::given::rename_levels(&mut seg, range)
            .with_context(|| format!("{input}: --levels {range}"))?;
    }
    pb.finish_and_clear();
    let mut report = SegmentReport::new(&seg, &img.warnings);
    let surfaces = if args.no_meshes {
        Vec::new()
    } else {
        let pb = spinetwin_core::progress::spinner("meshing");
        let s = mesh_structures(&seg, args.target_triangles)?;
        pb.finish_and_clear();
        report.meshes = Some(mesh_report(&s, args.mesh_format, args.target_triangles));
        s
    };
    write_dir_atomically(&out, |dir| {
        write_segmentation(&img.volume, &seg, &report, dir)?;
        write_meshes(&surfaces, args.mesh_format, &dir.join("meshes"))
    })?;
    let names: Vec<_> = seg.levels.iter().map(|l| l.level.name()).collect();
    println!(
        "{} vertebrae labelled ({}) in {:.1} s -> {}",
        names.len(),
        names.join(" "),
        t.elapsed().as_secs_f64(),
        out.display()
    );
    if let Some(m) = &report.meshes {
        let worst = m
            .structures
            .iter()
            .map(|s| s.volume_error_percent.abs())
            .fold(0.0f64, f64::max);
        println!(
            "{} surface meshes (closed: {}, worst volume error {worst:.2} %) -> {}",
            m.structures.len(),
            if m.structures.iter().all(|s| s.closed && s.manifold) {
                "all"
            } else {
                "NOT all"
            },
            out.join("meshes").display()
        );
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    for l in seg.levels.iter().filter(|l| !l.warnings.is_empty()) {
        for w in &l.warnings {
            println!("warning: {}: {w}", l.level);
        }
    }
    Ok(())
}

/// Writes labels.nii.gz, segment.json and the overview PNGs into `dir`.
pub fn write_segmentation(
    ct: &Volume<f32>,
    seg: &Segmentation,
    report: &SegmentReport,
    dir: &Path,
) -> Result<()> {
    nifti::write_labels(&dir.join("labels.nii.gz"), &seg.labels)
        .context("writing labels.nii.gz")?;
    write_json(&dir.join("segment.json"), report)?;
    // Through the middle of the labelled vertebrae, so the overview shows every level.
    let through = if seg.levels.is_empty() {
        let (lo, hi) = ct.grid().world_bounds();
        (lo + hi) / 2.0
    } else {
        seg.levels
            .iter()
            .map(|l| Vector3::from(l.centroid))
            .sum::<Vector3<f64>>()
            / seg.levels.len() as f64
    };
    render_slice(
        ct,
        Plane::Sagittal,
        through,
        Window::BONE,
        Some(&seg.labels),
    )
    .write_png(&dir.join("overview.png"))?;
    render_slice(ct, Plane::Coronal, through, Window::BONE, Some(&seg.labels))
        .write_png(&dir.join("overview_coronal.png"))?;
    Ok(())
}

/// The vertebrae (by level) and the discs present in the label map, cranial to caudal.
fn structures(seg: &Segmentation) -> Vec<Structure> {
    // One count per possible label: a hash set of the labels present took 1-2 s over a
    // 512 x 512 x 400 scan.
    let mut count = vec![0usize; usize::from(u16::MAX) + 1];
    for &v in seg.labels.data() {
        count[usize::from(v)] += 1;
    }
    let mut out = Vec::new();
    for (i, l) in seg.levels.iter().enumerate() {
        out.push(Structure {
            name: l.level.name().to_string(),
            label: l.label,
            color: [0.89, 0.85, 0.74, 1.0],
            voxels: count[usize::from(l.label)],
        });
        if let (Some(disc), Some(below)) = (l.level.disc_below_label(), seg.levels.get(i + 1)) {
            if count[usize::from(disc)] > 0 {
                out.push(Structure {
                    name: format!("{}-{}", l.level.name(), below.level.name()),
                    label: disc,
                    color: [0.45, 0.62, 0.85, 1.0],
                    voxels: count[usize::from(disc)],
                });
            }
        }
    }
    out
}

/// Triangles per structure after decimation when the user gives no `--target-triangles`.
pub(crate) const DEFAULT_TARGET_TRIANGLES: usize = 20_000;

/// Surfaces of every vertebra and disc: extracted, smoothed, decimated and checked.
pub(crate) fn mesh_structures(
    seg: &Segmentation,
    target_triangles: usize,
) -> Result<Vec<(Structure, LabelSurface)>> {
    use rayon::prelude::*;
    let opts = SurfaceOptions {
        target_triangles: Some(target_triangles.max(100)),
        ..Default::default()
    };
    // Largest first, one structure per task: a vertebra takes several times a disc's time,
    // and rayon's default split of 13 structures into halves left one core idle for seconds
    // at the end (longest-processing-time-first scheduling).
    let all = structures(seg);
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(all[i].voxels));
    let mut done: Vec<(usize, LabelSurface)> = order
        .into_par_iter()
        .with_max_len(1)
        .map(|i| {
            let s = &all[i];
            let surf = surface_of_label(&seg.labels, s.label, &opts)
                .with_context(|| format!("meshing {}", s.name))?;
            Ok((i, surf))
        })
        .collect::<Result<_>>()?;
    done.sort_by_key(|(i, _)| *i);
    Ok(all
        .into_iter()
        .zip(done)
        .map(|(s, (_, m))| (s, m))
        .collect())
}

fn mesh_report(
    surfaces: &[(Structure, LabelSurface)],
    format: MeshFormat,
    target_triangles: usize,
) -> MeshesReport {
    MeshesReport {
        format: format.extension().to_string(),
        target_triangles,
        glb: "meshes/spine.glb".into(),
        structures: surfaces
            .iter()
            .map(|(s, m)| MeshSummary {
                name: s.name.clone(),
                label: s.label,
                file: format!("meshes/{}.{}", s.name, format.extension()),
                triangles: m.report.triangles,
                extracted_triangles: m.extracted_triangles,
                volume_mm3: m.report.volume,
                voxel_volume_mm3: m.voxel_volume,
                volume_error_percent: m.volume_error_percent(),
                closed: m.report.closed,
                manifold: m.report.manifold,
                components: m.report.components,
                self_intersections: m.report.self_intersections.unwrap_or(0),
                seconds: m.seconds.iter().sum(),
            })
            .collect(),
    }
}

/// Writes one file per structure and spine.glb into `dir` (nothing when there are none).
fn write_meshes(
    surfaces: &[(Structure, LabelSurface)],
    format: MeshFormat,
    dir: &Path,
) -> Result<()> {
    if surfaces.is_empty() {
        return Ok(());
    }
    for (s, m) in surfaces {
        let path = dir.join(format!("{}.{}", s.name, format.extension()));
        format.write(&path, &m.mesh, &s.name)?;
    }
    let glb: Vec<_> = surfaces
        .iter()
        .map(|(s, m)| GlbStructure {
            name: &s.name,
            mesh: &m.mesh,
            color: s.color,
        })
        .collect();
    write_glb(&dir.join("spine.glb"), &glb)?;
    Ok(())
}
