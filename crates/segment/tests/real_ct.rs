//! Automatic segmentation of the real CTs in `../shared/data/` scored against their reference
//! labels (issue 3: Dice per vertebra >= 0.90 and identification 100 %).
//!
//! Writes `docs/validation/segmentation_real.md`. Regenerate with
//!
//!     cargo test --release -p spinetwin-segment --test real_ct -- --nocapture
//!
//! Skips with a message when the data folder or a case is absent. It asserts what the
//! pipeline guarantees today: it never mislabels silently (a vertebra found under a wrong
//! level carries a warning and a low confidence, or the scan is refused), and the report is
//! written. The acceptance figures themselves are measured and tabulated, not asserted.

use nalgebra::Vector3;
use spinetwin_imaging::{nifti, Volume};
use spinetwin_segment::{segment, LevelBasis, SegmentOptions, Segmentation};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
const REPORT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/validation/segmentation_real.md"
);
const DICE_TARGET: f64 = 0.90;

/// VerSe name of a vertebra label (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13).
fn verse_name(label: u16) -> String {
    match label {
        0 => "none".into(),
        1..=7 => format!("C{label}"),
        8..=19 => format!("T{}", label - 7),
        20..=25 => format!("L{}", label - 19),
        26 => "sacrum".into(),
        28 => "T13".into(),
        _ => format!("label {label}"),
    }
}

/// Vertebra labels of a segmentation (discs 100+ and canal 200 are not vertebrae).
fn is_vertebra(label: u16) -> bool {
    (1..=28).contains(&label)
}

/// TotalSegmentator v2 `total` numbering -> VerSe: 25 sacrum, 26 S1, 27-31 L5-L1,
/// 32-43 T12-T1, 44-50 C7-C1.
fn total_to_verse(label: u16) -> u16 {
    match label {
        25 | 26 => 26,
        27..=50 => 51 - label,
        _ => 0,
    }
}

struct Case {
    folder: &'static str,
    ct: &'static str,
    reference: &'static str,
    /// Reference label -> VerSe vertebra label (0: not a vertebra).
    map: fn(u16) -> u16,
    /// What the reference is.
    about: &'static str,
    /// Whole CT slices (along k) by which the reference is moved from where its header puts
    /// it: a reference voxel on CT slice k is compared on slice k + shift (see the ts-example
    /// case).
    reference_k_shift: usize,
}

const CASES: [Case; 2] = [
    Case {
        folder: "verse012-t10-l3-sagittal",
        ct: "sub-verse012_ct.nii.gz",
        reference: "sub-verse012_seg-vert_msk.nii.gz",
        map: |l| if is_vertebra(l) { l } else { 0 },
        about: "expert VerSe annotation (labels 17-22 = T10-L3); 3 x 1 x 1 mm sagittal slab, \
                105 mm wide, no sacrum in view",
        reference_k_shift: 0,
    },
    Case {
        folder: "ts-example-abdomen-ct",
        ct: "ct.nii.gz",
        reference: "seg_total_v2_first30slices.nii.gz",
        map: total_to_verse,
        about: "machine-made TotalSegmentator v2 labels (not expert-made) of 30 of the 112 \
                slices: the comparison is restricted to those slices; 3 mm isotropic. The file's \
                header puts the 30 labelled slices at the CT's first (caudal) 30, but there they \
                cover the pelvis, where the labels show the lower ribs, the kidneys and T11-L2; \
                they fit the last (cranial) 30 slices instead: 51 % of the reference vertebra \
                voxels lie on CT voxels above 150 HU there, at most 34 % at the other offsets \
                tried (every even offset 0-82, either slice order) and 0 % where the header puts \
                them. The CT's own orientation is right (pelvis at the low-z end, kidneys and \
                the thoracolumbar junction at the high-z end), so the reference is compared \
                shifted by 82 slices (246 mm) cranially; its level names are taken as they are",
        reference_k_shift: 82,
    },
];

/// One reference vertebra scored.
struct Row {
    label: u16,
    ref_voxels: usize,
    dice_same: f64,
    best: u16,
    /// Dice with the best-overlapping predicted vertebra, whatever its level (the outline
    /// alone, without the naming).
    dice_best: f64,
    /// The pipeline flagged the level it gave this vertebra (warning and low confidence).
    flagged: bool,
    /// The pipeline warned that the separation of the vertebrae is probably wrong (for the
    /// whole scan or for the vertebra covering this one).
    separation_warned: bool,
}

struct Outcome {
    folder: &'static str,
    about: &'static str,
    dims: [usize; 3],
    spacing: [f64; 3],
    compared: usize,
    /// Dice of "any vertebra" (reference vs prediction), over the compared voxels.
    union_dice: f64,
    seconds: f64,
    result: Result<Segmentation, String>,
    rows: Vec<Row>,
    licence: Vec<String>,
}

/// The reference on the CT grid (0 outside it) and the mask of CT voxels it covers, moved by
/// `shift` slices along k. The reference grid must be a sub-grid of the CT grid (same spacing
/// and axes, whole-voxel offset), which both cases are.
fn reference_on_ct(
    ct: &Volume<f32>,
    r: &Volume<u16>,
    map: fn(u16) -> u16,
    shift: usize,
) -> (Vec<u16>, Vec<bool>) {
    let (cg, rg) = (ct.grid(), r.grid());
    let n = ct.data().len();
    let (mut lab, mut covered) = (vec![0u16; n], vec![false; n]);
    let [rx, ry, rz] = rg.dims;
    for k in 0..rz {
        for j in 0..ry {
            for i in 0..rx {
                let w = rg.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                let f = cg.world_to_index(w);
                let mut ijk = [f.x, f.y, f.z].map(|x| x.round());
                assert!(
                    (0..3).all(|a| (f[a] - ijk[a]).abs() < 0.05),
                    "reference voxel ({i}, {j}, {k}) falls between CT voxels ({f:?}): grids differ"
                );
                ijk[2] += shift as f64;
                assert!(
                    (0..3).all(|a| ijk[a] >= 0.0 && ijk[a] < cg.dims[a] as f64),
                    "reference voxel ({i}, {j}, {k}) lies outside the CT once moved by the case's \
                     reference_k_shift of {shift} slices (was the reference file's header corrected? \
                     then set the shift to 0)"
                );
                let c = cg.linear(ijk[0] as usize, ijk[1] as usize, ijk[2] as usize);
                covered[c] = true;
                lab[c] = map(r.get(i, j, k));
            }
        }
    }
    (lab, covered)
}

/// Attribution lines of a case README: the `Origin:`, `Licence:` and `Attribution` lines.
fn licence_lines(readme: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(readme).unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.starts_with("Origin:") || l.starts_with("Licence:") || l.starts_with("Attribution")
        })
        .map(str::to_string)
        .collect()
}

fn score(seg: &Segmentation, reference: &[u16], covered: &[bool]) -> Vec<Row> {
    let pred = seg.labels.data();
    let mut levels: Vec<u16> = reference.iter().copied().filter(|&l| l != 0).collect();
    levels.sort_unstable();
    levels.dedup();
    levels
        .into_iter()
        .map(|label| {
            let (mut nr, mut np, mut both) = (0usize, 0usize, 0usize);
            let mut overlap = [0usize; 29];
            for ((&r, &p), &c) in reference.iter().zip(pred).zip(covered) {
                if !c {
                    continue;
                }
                nr += (r == label) as usize;
                np += (p == label) as usize;
                both += (r == label && p == label) as usize;
                if r == label && is_vertebra(p) {
                    overlap[p as usize] += 1;
                }
            }
            let best = (1..29u16)
                .max_by_key(|&l| overlap[l as usize])
                .filter(|&l| overlap[l as usize] > 0)
                .unwrap_or(0);
            let flagged = seg
                .levels
                .iter()
                .find(|l| l.label == best)
                .is_some_and(|l| !l.warnings.is_empty() && l.confidence < 0.5);
            let nbest = if best == 0 {
                0
            } else {
                pred.iter()
                    .zip(covered)
                    .filter(|(&p, &c)| c && p == best)
                    .count()
            };
            let dice_best = 2.0 * overlap[best as usize] as f64 / (nr + nbest).max(1) as f64;
            let separation_warned = seg
                .warnings
                .iter()
                .any(|w| w.contains("not separated correctly"))
                || seg.levels.iter().any(|l| {
                    (l.label == best || l.label == label)
                        && l.warnings
                            .iter()
                            .any(|w| w.contains("separation probably wrong"))
                });
            Row {
                label,
                ref_voxels: nr,
                dice_same: 2.0 * both as f64 / (nr + np).max(1) as f64,
                best,
                dice_best,
                flagged,
                separation_warned,
            }
        })
        .collect()
}

fn run_case(dir: &Path, case: &'static Case) -> Option<Outcome> {
    let folder = dir.join(case.folder);
    let (ct_path, ref_path) = (folder.join(case.ct), folder.join(case.reference));
    if !ct_path.is_file() || !ref_path.is_file() {
        println!(
            "skipping {}: {} or {} is absent",
            case.folder,
            ct_path.display(),
            ref_path.display()
        );
        return None;
    }
    let ct = nifti::read_volume(&ct_path).expect("CT readable");
    let r = nifti::read_labels(&ref_path).expect("reference labels readable");
    let (reference, covered) = reference_on_ct(&ct, &r, case.map, case.reference_k_shift);
    let t = Instant::now();
    let result = segment(&ct, &SegmentOptions::default()).map_err(|e| e.to_string());
    let seconds = t.elapsed().as_secs_f64();
    let union_dice = match &result {
        Ok(seg) => {
            let (mut na, mut nb, mut both) = (0usize, 0usize, 0usize);
            for ((&r, &p), &c) in reference.iter().zip(seg.labels.data()).zip(&covered) {
                let (x, y) = (c && r != 0, c && is_vertebra(p));
                na += x as usize;
                nb += y as usize;
                both += (x && y) as usize;
            }
            2.0 * both as f64 / (na + nb).max(1) as f64
        }
        Err(_) => 0.0,
    };
    let rows = match &result {
        Ok(seg) => score(seg, &reference, &covered),
        Err(_) => {
            let mut levels: Vec<u16> = reference.iter().copied().filter(|&l| l != 0).collect();
            levels.sort_unstable();
            levels.dedup();
            levels
                .into_iter()
                .map(|label| Row {
                    label,
                    ref_voxels: reference.iter().filter(|&&l| l == label).count(),
                    dice_same: 0.0,
                    best: 0,
                    dice_best: 0.0,
                    flagged: true,
                    separation_warned: true,
                })
                .collect()
        }
    };
    Some(Outcome {
        folder: case.folder,
        about: case.about,
        dims: ct.dims(),
        spacing: ct.grid().spacing,
        compared: covered.iter().filter(|&&c| c).count(),
        union_dice,
        seconds,
        result,
        rows,
        licence: licence_lines(&folder.join("README.md")),
    })
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02}")
}

fn passes(o: &Outcome) -> bool {
    o.result.is_ok()
        && o.rows
            .iter()
            .all(|r| r.dice_same >= DICE_TARGET && r.best == r.label)
}

fn report(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let all = outcomes.iter().all(passes);
    let _ = writeln!(s, "# Automatic segmentation on real CT\n");
    let _ = writeln!(
        s,
        "Issue 3 acceptance: on each real CT in `../shared/data/` with reference labels, Dice \
         per vertebra >= {DICE_TARGET:.2} and identification 100 %. `spinetwin_segment::segment` \
         with the default options, scored against the reference labels on the CT grid. \
         \"Dice\" compares the reference vertebra with the predicted label of the same level; \
         \"best overlap\" is the predicted vertebra label covering most of the reference \
         vertebra (identified when it is the same level) and \"Dice best overlap\" the Dice with \
         that one (the outline without the naming); \"flagged\" means the pipeline gave \
         that vertebra a level warning and a confidence below 0.5 (or refused the scan); \
         \"separation warned\" means the scan or that vertebra carries a warning that the \
         vertebrae are probably not separated correctly.\n"
    );
    let _ = writeln!(
        s,
        "**Overall: {}** ({} of {} cases pass).\n",
        if all { "PASS" } else { "FAIL" },
        outcomes.iter().filter(|o| passes(o)).count(),
        outcomes.len()
    );
    let _ = writeln!(
        s,
        "Generated on {} by `cargo test --release -p spinetwin-segment --test real_ct -- \
         --nocapture` (regenerate the same way; the test skips cases whose files are absent).\n",
        today()
    );
    let _ = writeln!(
        s,
        "Where the Dice is lost, what was fixed and what was tried: \
         [segmentation_real_losses.md](segmentation_real_losses.md) (written by hand, dated).\n"
    );
    for o in outcomes {
        let _ = writeln!(s, "## {}\n", o.folder);
        let _ = writeln!(
            s,
            "CT {} x {} x {} voxels, {:.1} x {:.1} x {:.1} mm; reference: {}. Compared over {} \
             voxels.\n",
            o.dims[0],
            o.dims[1],
            o.dims[2],
            o.spacing[0],
            o.spacing[1],
            o.spacing[2],
            o.about,
            o.compared,
        );
        // The time goes to stdout only, so that the committed table changes with results.
        println!("{}: segment took {:.1} s", o.folder, o.seconds);
        match &o.result {
            Ok(seg) => {
                let found: Vec<String> = seg
                    .levels
                    .iter()
                    .map(|l| {
                        let ribs = if l.rib_bearing == Some(true) {
                            ", ribs"
                        } else {
                            ""
                        };
                        format!("{} ({:.2}{ribs})", l.level.name(), l.confidence)
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "Levels found (confidence, \"ribs\" where ribs were detected): {}. Sacrum \
                     found: {}. Levels named from: {}. Bone threshold {:.0} HU.\n",
                    found.join(", "),
                    if seg.sacrum_found { "yes" } else { "no" },
                    match seg.level_basis {
                        LevelBasis::Sacrum => "the sacrum",
                        LevelBasis::SacrumAndRibs => "the sacrum, confirmed by the ribs",
                        LevelBasis::Ribs => "the ribs (last rib-bearing vertebra = T12)",
                        LevelBasis::Assumed => "nothing (caudal-most assumed L5)",
                        LevelBasis::Model => "a learned model",
                        LevelBasis::Given => "the user",
                    },
                    seg.bone_threshold_hu
                );
                if !seg.warnings.is_empty() {
                    let _ = writeln!(s, "Warnings:\n");
                    for w in &seg.warnings {
                        let _ = writeln!(s, "- {w}");
                    }
                    let _ = writeln!(s);
                }
            }
            Err(e) => {
                let _ = writeln!(s, "**Refused**: {e}\n");
            }
        }
        let _ = writeln!(
            s,
            "| level | reference voxels | Dice same level | best-overlap level | Dice best overlap | identified | flagged | separation warned |\n\
             |---|---|---|---|---|---|---|---|"
        );
        for r in &o.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {:.3} | {} | {:.3} | {} | {} | {} |",
                verse_name(r.label),
                r.ref_voxels,
                r.dice_same,
                verse_name(r.best),
                r.dice_best,
                if r.best == r.label { "yes" } else { "no" },
                if r.flagged { "yes" } else { "no" },
                if r.separation_warned { "yes" } else { "no" }
            );
        }
        let n = o.rows.len();
        let ok_dice = o.rows.iter().filter(|r| r.dice_same >= DICE_TARGET).count();
        let ok_id = o.rows.iter().filter(|r| r.best == r.label).count();
        let _ = writeln!(
            s,
            "\nDice >= {DICE_TARGET:.2}: {ok_dice}/{n}; identified: {ok_id}/{n}; Dice of all \
             vertebrae together (bone outline, levels ignored): {:.3}. **{}**\n",
            o.union_dice,
            if passes(o) { "PASS" } else { "FAIL" }
        );
        let _ = writeln!(s, "Data origin and licence (from the case README):\n");
        for l in &o.licence {
            let _ = writeln!(s, "> {l}\n");
        }
    }
    let _ = writeln!(s, "## verse004-t9-l5-mask\n");
    let _ = writeln!(
        s,
        "Expert VerSe labels T9-L5 but no CT: not a segmentation case (used for building a \
         twin from a segmentation). Not scored.\n"
    );
    s
}

#[test]
fn real_ct_dice_and_identification() {
    let dir = PathBuf::from(DATA);
    if !dir.is_dir() {
        println!(
            "skipping: no real data at {} (see ARCHITECTURE.md, Tests and data)",
            dir.display()
        );
        return;
    }
    let outcomes: Vec<Outcome> = CASES.iter().filter_map(|c| run_case(&dir, c)).collect();
    if outcomes.is_empty() {
        println!(
            "skipping: none of the real cases is present in {}",
            dir.display()
        );
        return;
    }
    let text = report(&outcomes);
    println!("{text}");
    // The date alone changing does not rewrite the report.
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("Generated on "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let old = std::fs::read_to_string(REPORT).unwrap_or_default();
    if outcomes.len() == CASES.len() && body(&old) != body(&text) {
        spinetwin_core::atomic::write_bytes(Path::new(REPORT), text.as_bytes())
            .expect("report written");
    }
    // Never a silent mislabel: a vertebra under a wrong level is flagged, or the scan refused;
    // a vertebra not found at all comes with a separation warning; and never a grossly
    // wrong outline (Dice under 0.5) without a warning that the
    // vertebrae are probably not separated correctly.
    for o in &outcomes {
        for r in &o.rows {
            if r.best == r.label && r.dice_same < 0.5 {
                assert!(
                    r.separation_warned,
                    "{}: {} has Dice {:.3} under its own level without a separation warning",
                    o.folder,
                    verse_name(r.label),
                    r.dice_same
                );
            }
            if r.best == 0 {
                // Missed entirely: the scan must say its vertebrae are not separated right.
                assert!(
                    r.separation_warned,
                    "{}: reference {} not found and no separation warning",
                    o.folder,
                    verse_name(r.label)
                );
            }
            if r.best != 0 && r.best != r.label {
                assert!(
                    r.flagged,
                    "{}: reference {} found as {} without a level warning",
                    o.folder,
                    verse_name(r.label),
                    verse_name(r.best)
                );
            }
        }
    }
}
