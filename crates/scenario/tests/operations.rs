//! Scenario files: parsing, every validation error, and each operation changing the model
//! as documented (no solves).

mod common;

use spinetwin_model::bone_fe::{CementFill, BONE_CEMENT};
use spinetwin_model::ligament::Ligament;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{DiscBlockKind, PosteriorContact, Twin};
use spinetwin_scenario::{apply, Operation, Scenario, ScenarioError, SideSel};
use spinetwin_segment::landmarks::PEDICLE_ASYMMETRY_WARNING;

fn twin() -> Twin {
    common::specimen(&["L3", "L4", "L5"])
}

fn scen(ops: &str) -> Scenario {
    Scenario::parse(&format!("name = \"test\"\n{ops}"), "test.toml").unwrap()
}

fn invalid(t: &Twin, ops: &str) -> String {
    let e = apply(t, &scen(ops)).unwrap_err();
    assert!(matches!(e, ScenarioError::Invalid { .. }), "{e}");
    let m = e.to_string();
    assert!(m.starts_with("test.toml: operation "), "{m}");
    m
}

fn count(t: &Twin, upper: usize, lig: Ligament) -> usize {
    t.fibres
        .iter()
        .filter(|f| f.bodies[0] == upper && f.ligament == lig)
        .count()
}

#[test]
fn parses_the_documented_example_and_the_repo_scenarios() {
    let s = Scenario::parse(
        r#"
name = "L4-L5 pedicle screws and rods"
[[operation]]
kind = "pedicle_screws"
levels = ["L4", "L5"]
sides = "both"
rod_diameter_mm = 5.5
rod_material = "ti6al4v"
[[operation]]
kind = "laminectomy"
level = "L4"
"#,
        "x.toml",
    )
    .unwrap();
    assert_eq!(s.operations.len(), 2);
    assert!(matches!(
        &s.operations[0],
        Operation::PedicleScrews { levels, sides: SideSel::Both, rod_diameter_mm, .. }
            if levels == &["L4", "L5"] && *rod_diameter_mm == 5.5
    ));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            Scenario::read(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 5, "{n} scenario files in {}", dir.display());
}

#[test]
fn parse_errors_name_the_file() {
    for bad in [
        "name = \"x\"\n",                                                // no operations
        "name = \"\"\n[[operation]]\nkind = \"laminectomy\"\nlevel = \"L4\"\n", // empty name
        "name = \"x\"\n[[operation]]\nkind = \"amputation\"\n",          // unknown kind
        "name = \"x\"\n[[operation]]\nkind = \"laminectomy\"\nlevle = \"L4\"\n", // typo
        "name = \"x\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nrod_material = \"steel\"\n",
        "name = \"x\"\n[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"xlif\"\n",
        "name = [\n",
    ] {
        let e = Scenario::parse(bad, "bad.toml").unwrap_err().to_string();
        assert!(e.starts_with("bad.toml: "), "{e}");
    }
    let e = Scenario::read(std::path::Path::new("/nonexistent/s.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/nonexistent/s.toml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn validation_errors() {
    let t = twin();
    let lam = |l: &str| format!("[[operation]]\nkind = \"laminectomy\"\nlevel = \"{l}\"\n");
    // A level not in the twin, and not a level at all.
    let m = invalid(&t, &lam("L1"));
    assert!(
        m.contains("operation 1 (laminectomy)") && m.contains("L1 is not in the twin"),
        "{m}"
    );
    let m = invalid(&t, &lam("Q7"));
    assert!(m.contains("not a vertebra name"), "{m}");
    // A segment that is not one.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"nucleotomy\"\nsegment = \"L3-L5\"\n",
    );
    assert!(m.contains("not a motion segment"), "{m}");
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"nucleotomy\"\nsegment = \"L4\"\n",
    );
    assert!(m.contains("upper-lower"), "{m}");
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"facetectomy\"\nsegment = \"L1-L2\"\n",
    );
    assert!(m.contains("not in the twin"), "{m}");
    // Screws on a single level.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\"]\n",
    );
    assert!(m.contains("single level"), "{m}");
    // Cage and nucleotomy on one disc.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"nucleotomy\"\nsegment = \"L4-L5\"\n[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"tlif\"\n",
    );
    assert!(
        m.contains("operation 2 (interbody_cage)") && m.contains("operation 1"),
        "{m}"
    );
    // Two facetectomies on the same joint side.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"left\"\n[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"both\"\n",
    );
    assert!(m.contains("left facet joint is already removed"), "{m}");
    // A medial fraction belongs to a partial facetectomy and lies in 0.1..0.9.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nmedial_fraction = 0.3\n",
    );
    assert!(m.contains("partial"), "{m}");
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nextent = \"partial\"\nmedial_fraction = 0.95\n",
    );
    assert!(m.contains("0.95") && m.contains("0.1..0.9"), "{m}");
    // Screw longer than the pedicle axis.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nscrew_length_mm = 200\n",
    );
    assert!(m.contains("longer than the L4 left pedicle axis"), "{m}");
    // Rod diameter, duplicated level, doubled laminectomy, cement fraction, double screws.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nrod_diameter_mm = 20\n",
    );
    assert!(m.contains("rod_diameter_mm"), "{m}");
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L4\"]\n",
    );
    assert!(m.contains("listed twice"), "{m}");
    let m = invalid(&t, &format!("{}{}", lam("L4"), lam("L4")));
    assert!(m.contains("already decompressed"), "{m}");
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"L4\"\nfill_fraction = 1.5\n",
    );
    assert!(m.contains("fill_fraction"), "{m}");
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L3\", \"L4\"]\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nsides = \"right\"\n",
    );
    assert!(m.contains("L4 right pedicle already has a screw"), "{m}");
}

#[test]
fn missing_pedicle_is_named() {
    let mut file = common::phantom_file();
    file.landmarks
        .vertebrae
        .retain(|v| ["L4", "L5"].contains(&v.level.name()));
    file.landmarks.discs.retain(|d| d.upper.name() == "L4");
    for v in &mut file.landmarks.vertebrae {
        if v.level.name() == "L5" {
            v.pedicles = None;
        }
    }
    let t = Twin::build(file).unwrap();
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\n",
    );
    assert!(m.contains("L5 left pedicle was not found"), "{m}");
}

#[test]
fn laminectomy_removes_lf_isl_ssl_above_and_below() {
    let t = twin();
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"laminectomy\"\nlevel = \"L4\"\n"),
    )
    .unwrap();
    for seg in [0, 1] {
        for lig in [Ligament::Lf, Ligament::Isl, Ligament::Ssl] {
            assert!(count(&t, seg, lig) > 0, "intact {seg} {lig:?}");
            assert_eq!(count(&m.twin, seg, lig), 0, "{seg} {lig:?}");
        }
        for lig in [Ligament::All, Ligament::Pll, Ligament::Cl, Ligament::Itl] {
            assert_eq!(count(&m.twin, seg, lig), count(&t, seg, lig));
        }
    }
    assert_eq!(m.twin.facets.len(), t.facets.len());
    // At the top of the twin only the segment below exists.
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"laminectomy\"\nlevel = \"L3\"\n"),
    )
    .unwrap();
    assert_eq!(count(&m.twin, 0, Ligament::Lf), 0);
    assert_eq!(count(&m.twin, 1, Ligament::Lf), count(&t, 1, Ligament::Lf));
}

#[test]
fn facetectomy_removes_contact_and_capsule_of_that_side() {
    let t = twin();
    assert_eq!(t.facets.len(), 4, "{:?}", t.warnings);
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"left\"\n"),
    )
    .unwrap();
    assert_eq!(m.twin.facets.len(), 3);
    assert!(!m.twin.facets.iter().any(|f| f.upper == 1 && f.side == 0));
    let cl = count(&t, 1, Ligament::Cl);
    assert!(cl >= 2);
    assert_eq!(count(&m.twin, 1, Ligament::Cl), cl / 2);
    assert_eq!(count(&m.twin, 0, Ligament::Cl), count(&t, 0, Ligament::Cl));
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\n"),
    )
    .unwrap();
    assert_eq!(m.twin.facets.len(), 2);
    assert_eq!(count(&m.twin, 1, Ligament::Cl), 0);
    // The contact list of the FE model follows.
    let (model, _) = m
        .fem_model(&LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0))
        .unwrap();
    assert_eq!(model.contacts.len(), 2);
}

#[test]
fn medial_facetectomy_removes_the_medial_share_of_the_joint() {
    let t = twin();
    let i = 1; // L4-L5 in the L3-L5 specimen.
    let frame = t.vertebra(i).frame.clone();
    let midline = |p: &[f64; 3]| {
        (0..3)
            .map(|k| (p[k] - frame.origin[k]) * frame.x[k])
            .sum::<f64>()
            .abs()
    };
    let before = t
        .facets
        .iter()
        .find(|f| f.upper == i && f.side == 0 && f.kind == PosteriorContact::Articular)
        .unwrap()
        .geometry
        .clone();
    let area = |g: &spinetwin_model::facet::FacetGeometry| g.slave_area.iter().sum::<f64>();
    for fraction in [0.3, 0.5, 0.7] {
        let m = apply(
            &t,
            &scen(&format!(
                "[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"left\"\nextent = \"partial\"\nmedial_fraction = {fraction}\n"
            )),
        )
        .unwrap();
        assert_eq!(m.twin.facets.len(), t.facets.len(), "the joint stays");
        let after = &m
            .twin
            .facets
            .iter()
            .find(|f| f.upper == i && f.side == 0 && f.kind == PosteriorContact::Articular)
            .unwrap()
            .geometry;
        // The kept area is the lateral (1 - fraction) of the joint, to within one point.
        let kept = area(after) / area(&before);
        let one = before.slave_area.iter().cloned().fold(0.0, f64::max) / area(&before);
        assert!(
            (kept - (1.0 - fraction)).abs() <= one + 1e-9,
            "fraction {fraction}: kept {kept:.3} of the area"
        );
        // Every kept point lies farther from the midline than every removed one; the master
        // surface loses its medial triangles too.
        let kept_min = after
            .slave
            .iter()
            .map(midline)
            .fold(f64::INFINITY, f64::min);
        let removed_max = before
            .slave
            .iter()
            .filter(|p| !after.slave.contains(p))
            .map(midline)
            .fold(0.0, f64::max);
        assert!(kept_min > removed_max, "{kept_min} <= {removed_max}");
        assert!(after.master.len() < before.master.len());
        assert!(!after.master.is_empty());
        // The right joint is untouched.
        let right = |tw: &Twin| {
            tw.facets
                .iter()
                .find(|f| f.upper == i && f.side == 1)
                .unwrap()
                .geometry
                .slave
                .len()
        };
        assert_eq!(right(&m.twin), right(&t));
        // Capsular fibres: only left ones inserting medial of the cut go.
        let left_cl = |tw: &Twin, left: bool| -> Vec<[f64; 3]> {
            tw.fibres
                .iter()
                .filter(|f| f.bodies[0] == i && f.ligament == Ligament::Cl)
                .filter(|f| {
                    let x: f64 = (0..3)
                        .map(|k| (f.ends[0][k] - frame.origin[k]) * frame.x[k])
                        .sum();
                    (x >= 0.0) == left
                })
                .map(|f| f.ends[0])
                .collect()
        };
        let (lb, la) = (left_cl(&t, true), left_cl(&m.twin, true));
        assert_eq!(
            left_cl(&m.twin, false),
            left_cl(&t, false),
            "right capsule kept"
        );
        for e in &lb {
            if la.contains(e) {
                assert!(midline(e) > removed_max, "kept fibre medial of the cut");
            } else {
                assert!(midline(e) < kept_min, "cut fibre lateral of the cut");
            }
        }
        assert!(
            m.changes[0].contains("medial facetectomy L4-L5 left"),
            "{:?}",
            m.changes
        );
    }
}

#[test]
fn hemilaminectomy_removes_one_half_of_the_flavum_above_and_below() {
    let t = twin();
    // Lateral offset (mm, + left) of a fibre's insertion on L4 (twin index 1).
    let fr = t.vertebra(1).frame.clone();
    let offset = |f: &spinetwin_model::twin::Fibre| {
        let end = f.bodies.iter().position(|&b| b == 1).unwrap();
        (0..3)
            .map(|k| (f.ends[end][k] - fr.origin[k]) * fr.x[k])
            .sum::<f64>()
    };
    for (side, sign) in [("left", 1.0), ("right", -1.0)] {
        let m = apply(
            &t,
            &scen(&format!(
                "[[operation]]\nkind = \"hemilaminectomy\"\nlevel = \"L4\"\nside = \"{side}\"\n"
            )),
        )
        .unwrap();
        for seg in [0, 1] {
            let before = count(&t, seg, Ligament::Lf);
            let after = count(&m.twin, seg, Ligament::Lf);
            // Five flavum fibres spread across the midline: the two of the other side stay.
            assert!(
                before >= 3 && after > 0 && after < before,
                "{side} {seg}: {before} -> {after}"
            );
            for f in m
                .twin
                .fibres
                .iter()
                .filter(|f| f.bodies[0] == seg && f.ligament == Ligament::Lf)
            {
                assert!(
                    sign * offset(f) < -0.5,
                    "{side}: a kept fibre {:.2} mm on the resected side",
                    offset(f)
                );
            }
            for lig in [Ligament::Isl, Ligament::Ssl, Ligament::All, Ligament::Cl] {
                assert_eq!(
                    count(&m.twin, seg, lig),
                    count(&t, seg, lig),
                    "{side} {seg} {lig:?}"
                );
            }
        }
        assert_eq!(m.twin.facets.len(), t.facets.len());
        assert!(
            m.changes[0].contains("hemilaminectomy L4 ") && m.changes[0].contains(side),
            "{:?}",
            m.changes
        );
    }
    // Both halves would leave the spinous process without its arch: refused.
    let m = invalid(
        &t,
        "[[operation]]\nkind = \"hemilaminectomy\"\nlevel = \"L4\"\nside = \"left\"\n[[operation]]\nkind = \"hemilaminectomy\"\nlevel = \"L4\"\nside = \"right\"\n",
    );
    assert!(
        m.contains("operation 2 (hemilaminectomy)") && m.contains("use a laminectomy"),
        "{m}"
    );
    // Conflicts, in either order, and a repeated side.
    let hemi = "[[operation]]\nkind = \"hemilaminectomy\"\nlevel = \"L4\"\nside = \"left\"\n";
    let lam = "[[operation]]\nkind = \"laminectomy\"\nlevel = \"L4\"\n";
    let m = invalid(&t, &format!("{hemi}{lam}"));
    assert!(
        m.contains("operation 2 (laminectomy)") && m.contains("hemilaminectomy (operation 1)"),
        "{m}"
    );
    let m = invalid(&t, &format!("{lam}{hemi}"));
    assert!(
        m.contains("operation 2 (hemilaminectomy)") && m.contains("laminectomy (operation 1)"),
        "{m}"
    );
    let m = invalid(&t, &format!("{hemi}{hemi}"));
    assert!(m.contains("L4 left lamina is already removed"), "{m}");
    // The side must be given: a parse error naming the file and the field.
    let e = Scenario::parse(
        "name = \"x\"\n[[operation]]\nkind = \"hemilaminectomy\"\nlevel = \"L4\"\n",
        "hemi.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("hemi.toml: ") && e.contains("missing field `side`"),
        "{e}"
    );
}

#[test]
fn bony_fusion_turns_the_disc_space_into_bone() {
    let t = twin();
    let d0 = &t.discs[1].mesh;
    let (nuc, ann, all) = (
        d0.nucleus_elements.len(),
        d0.annulus_elements.len(),
        d0.mesh.num_elements(),
    );
    assert_eq!(nuc + ann, all);
    let fusion = "[[operation]]\nkind = \"bony_fusion\"\nsegment = \"L4-L5\"\n";
    let m = apply(&t, &scen(fusion)).unwrap();
    let d = &m.twin.discs[1].mesh;
    assert!(d.nucleus_elements.is_empty() && d.annulus_elements.is_empty());
    assert!(d.lamella.is_empty() && d.fibre_directions.is_empty());
    assert_eq!(m.discs_without_nucleus, vec![1]);
    let b = &m.twin.implants.disc_blocks;
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0].kind, b[0].elements.len()),
        (DiscBlockKind::FusionCentre, nuc)
    );
    assert_eq!(
        (b[1].kind, b[1].elements.len()),
        (DiscBlockKind::FusionRim, ann)
    );
    // The default modulus: the mean cancellous modulus of L4 and L5 from their HU.
    let mat = spinetwin_model::bone::BoneMaterial::default();
    let expect =
        (mat.modulus(t.vertebra(1).trabecular_hu) + mat.modulus(t.vertebra(2).trabecular_hu)) / 2.0;
    assert!(
        (b[0].e - expect).abs() < 1e-9 && b[0].e > 50.0,
        "{} vs {expect}",
        b[0].e
    );
    assert!(
        m.changes[0].contains("bony fusion L4-L5")
            && m.changes[0].contains(&format!("E {:.0} MPa", expect)),
        "{:?}",
        m.changes
    );
    // Every element of the fused disc is in exactly one solid block of the FE model.
    let case = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let (model, _) = m.fem_model(&case).unwrap();
    let first: usize = t.discs[0].mesh.mesh.num_elements();
    let range = first..first + all;
    let mut seen = vec![0usize; all];
    for s in &model.solids {
        for &e in s.elements.iter().filter(|e| range.contains(e)) {
            seen[e - first] += 1;
        }
    }
    assert!(
        seen.iter().all(|&c| c == 1),
        "{:?}",
        seen.iter().filter(|&&c| c != 1).count()
    );
    // A fusion of the TLIF: the cage stays a cage and the centre, the mass fills the whole
    // annulus (the approach window included) whatever the order of the operations; a given
    // modulus is used.
    let cage =
        "[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"tlif\"\n";
    let given = "[[operation]]\nkind = \"bony_fusion\"\nsegment = \"L4-L5\"\nmodulus_mpa = 100\n";
    for ops in [format!("{cage}{given}"), format!("{given}{cage}")] {
        let m = apply(&t, &scen(&ops)).unwrap();
        let b = &m.twin.implants.disc_blocks;
        let kinds: Vec<_> = b.iter().map(|b| (b.kind, b.elements.len(), b.e)).collect();
        assert_eq!(
            kinds,
            [
                (DiscBlockKind::Cage, nuc, 3600.0),
                (DiscBlockKind::FusionRim, ann, 100.0)
            ]
        );
        assert_eq!(m.discs_without_nucleus, vec![1]);
        // Only the cage is an implant on the endplates.
        assert!(
            m.changes.iter().any(|c| c.contains("around the cage")),
            "{:?}",
            m.changes
        );
    }
    // Errors: twice, a modulus out of range, and no HU for the default.
    let m = invalid(&t, &format!("{fusion}{fusion}"));
    assert!(m.contains("already fused by operation 1"), "{m}");
    let m = invalid(&t, &given.replace("100", "5"));
    assert!(m.contains("modulus_mpa = 5"), "{m}");
    let mut file = t.file.clone();
    file.landmarks.vertebrae[2].trabecular_hu = f64::NAN;
    let nohu = Twin::build(file).unwrap();
    let m = invalid(&nohu, fusion);
    assert!(
        m.contains("trabecular HU of L5 is unknown") && m.contains("modulus_mpa"),
        "{m}"
    );
    assert!(apply(&nohu, &scen(given)).is_ok());
}

#[test]
fn nucleotomy_takes_the_nucleus_out_of_every_block() {
    let t = twin();
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"nucleotomy\"\nsegment = \"L4-L5\"\n"),
    )
    .unwrap();
    assert!(m.twin.discs[1].mesh.nucleus_elements.is_empty());
    assert_eq!(m.discs_without_nucleus, vec![1]);
    let case = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let (a, _) = t.fem_model(&case).unwrap();
    let (b, _) = m.fem_model(&case).unwrap();
    let n = |m: &spinetwin_fem::nl::Model| m.solids.iter().map(|s| s.elements.len()).sum::<usize>();
    assert_eq!(n(&a) - n(&b), t.discs[1].mesh.nucleus_elements.len());
    assert_eq!(a.mesh.num_elements(), b.mesh.num_elements());
}

#[test]
fn cage_replaces_the_nucleus_and_opens_the_approach() {
    let t = twin();
    let nuc = t.discs[1].mesh.nucleus_elements.len();
    let ann = t.discs[1].mesh.annulus_elements.len();
    for (fp, extra) in [
        ("tlif", ""),
        ("plif", ""),
        ("alif", ""),
        ("llif", "side = \"right\"\n"),
    ] {
        let m = apply(
            &t,
            &scen(&format!(
                "[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nmaterial = \"peek\"\nfootprint = \"{fp}\"\n{extra}"
            )),
        )
        .unwrap();
        let d = &m.twin.discs[1].mesh;
        assert!(d.nucleus_elements.is_empty());
        let removed = ann - d.annulus_elements.len();
        assert!(removed > 0 && removed < ann / 3, "{fp}: {removed} of {ann}");
        assert_eq!(d.fibre_directions.len(), d.annulus_elements.len());
        assert_eq!(d.lamella.len(), d.annulus_elements.len());
        let b = &m.twin.implants.disc_blocks;
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].disc, b[0].elements.len(), b[0].e), (1, nuc, 3600.0));
        let (model, _) = m
            .fem_model(&LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0))
            .unwrap();
        let cage = model
            .solids
            .iter()
            .find(|s| s.name == "cage L4-L5")
            .unwrap();
        assert_eq!(cage.elements.len(), nuc);
        let all = count(&m.twin, 1, Ligament::All);
        assert_eq!(all == 0, fp == "alif", "{fp}: ALL fibres {all}");
    }
    // The TLIF window is on the approach side: posterolateral left by default.
    let m = apply(
        &t,
        &scen(
            "[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"tlif\"\n",
        ),
    )
    .unwrap();
    let fr = &t.vertebra(2).frame;
    let d0 = &t.discs[1].mesh;
    let kept = &m.twin.discs[1].mesh.annulus_elements;
    let centre: [f64; 3] = {
        let n = d0.mesh.nodes.len() as f64;
        let s = d0
            .mesh
            .nodes
            .iter()
            .fold([0.0; 3], |a, p| [a[0] + p[0], a[1] + p[1], a[2] + p[2]]);
        [s[0] / n, s[1] / n, s[2] / n]
    };
    for &e in d0.annulus_elements.iter().filter(|e| !kept.contains(e)) {
        let nodes = d0.mesh.element_nodes(e);
        let mut c = [0.0; 3];
        for &k in nodes {
            for i in 0..3 {
                c[i] += d0.mesh.nodes[k][i] / nodes.len() as f64 - centre[i] / nodes.len() as f64;
            }
        }
        let dot = |a: &[f64; 3], b: &[f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
        assert!(
            dot(&c, &fr.x) > 0.0 && dot(&c, &fr.y) > 0.0,
            "removed element {e} not posterolateral left"
        );
    }
}

#[test]
fn screws_add_rods_between_the_heads() {
    let t = twin();
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L5\", \"L3\", \"L4\"]\nrod_diameter_mm = 6.0\nrod_material = \"cocr\"\n"),
    )
    .unwrap();
    assert_eq!(m.screws.len(), 6);
    let beams = &m.twin.implants.beams;
    assert_eq!(beams.len(), 4);
    let ends: Vec<(usize, usize)> = beams.iter().map(|b| (b.a.body, b.b.body)).collect();
    assert_eq!(ends, vec![(0, 1), (0, 1), (1, 2), (1, 2)]);
    let sec = spinetwin_fem::nl::BeamSection::circle(6.0);
    for b in beams {
        assert_eq!(b.section, sec);
        assert_eq!(b.e, 210_000.0);
        let head = |lvl: usize| {
            m.screws
                .iter()
                .find(|p| p.level == t.levels[lvl] && b.name.ends_with(p.side.name()))
                .unwrap()
                .head
        };
        assert_eq!(b.a.at, head(b.a.body));
        assert_eq!(b.b.at, head(b.b.body));
    }
    for p in &m.screws {
        assert!((4.5..=7.5).contains(&p.diameter_mm), "{p:?}");
        assert_eq!((p.diameter_mm * 2.0).fract(), 0.0);
        assert!(
            p.length_mm <= 0.8 * p.pedicle_axis_length_mm + 1e-9,
            "{p:?}"
        );
        // The head sits 10 mm behind the entry, against the pedicle direction.
        let d: f64 = (0..3)
            .map(|i| (p.head[i] - p.entry[i]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((d - 10.0).abs() < 1e-9);
        let dir = t
            .vertebra(t.levels.iter().position(|&l| l == p.level).unwrap())
            .pedicles
            .as_ref()
            .map(|s| {
                if p.side.index() == 0 {
                    s.left.direction
                } else {
                    s.right.direction
                }
            })
            .unwrap();
        let along: f64 = (0..3).map(|i| (p.head[i] - p.entry[i]) * dir[i]).sum();
        assert!(along < -9.99, "{along}");
    }
    let (model, _) = m
        .fem_model(&LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0))
        .unwrap();
    assert_eq!(model.beams.len(), 4);
    // Unilateral: one rod per pair.
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nsides = \"right\"\n"),
    )
    .unwrap();
    assert_eq!(m.twin.implants.beams.len(), 1);
    assert!(m.twin.implants.beams[0].name.ends_with("right"));
}

/// Screws planned in a vertebra whose pedicle corridors the landmarks found lopsided carry
/// that warning into the scenario's assumptions; screws elsewhere do not.
#[test]
fn screws_in_a_vertebra_with_lopsided_corridors_carry_its_warning() {
    let mut t = twin();
    let ops = |a: &str, b: &str| {
        scen(&format!(
            "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"{a}\", \"{b}\"]\n"
        ))
    };
    let says = |m: &spinetwin_scenario::ScenarioModel| -> Vec<String> {
        m.assumptions
            .iter()
            .filter(|a| a.contains(PEDICLE_ASYMMETRY_WARNING))
            .cloned()
            .collect()
    };
    assert!(says(&apply(&t, &ops("L4", "L5")).unwrap()).is_empty());
    let w =
        format!("{PEDICLE_ASYMMETRY_WARNING}: they converge by -10 deg (left) and 15 deg (right)");
    let l5 = t.levels.iter().position(|l| l.name() == "L5").unwrap();
    t.file.landmarks.vertebrae[l5].warnings.push(w.clone());
    let said = says(&apply(&t, &ops("L4", "L5")).unwrap());
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("screws in L5:") && said[0].ends_with(&w),
        "{}",
        said[0]
    );
    assert!(says(&apply(&t, &ops("L3", "L4")).unwrap()).is_empty());
}

#[test]
fn screws_are_anchored_elastically_and_softer_bone_holds_them_less() {
    use spinetwin_model::anchorage::ANCHORAGE_FACTOR;
    use spinetwin_model::bone::BoneMaterial;
    let t = twin();
    let case = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let ops = "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\n";
    let m = apply(&t, &scen(ops)).unwrap();
    // Each screw: its vertebra's cancellous modulus times the interface factor.
    for (p, s) in m.screws.iter().zip(&m.twin.implants.screws) {
        let b = t.levels.iter().position(|&l| l == p.level).unwrap();
        let want = BoneMaterial::default().modulus(t.vertebra(b).trabecular_hu) * ANCHORAGE_FACTOR;
        assert!(want > 0.0);
        assert_eq!(p.anchorage_modulus_mpa, Some(want));
        assert_eq!(s.anchorage_modulus_mpa, Some(want));
    }
    // The FE model: a body per screw, a connector from its vertebra at the entry, and the
    // rods clamped to the screw bodies (not to the vertebrae).
    let (model, index) = m.fem_model(&case).unwrap();
    let nb = t.levels.len();
    assert_eq!(model.bodies.len(), nb + 4);
    assert_eq!(model.connectors.len(), 4);
    assert_eq!(index.screw_bodies.len(), 4);
    for (c, &(sb, v)) in model.connectors.iter().zip(&index.screw_bodies) {
        assert_eq!((c.a.body, c.b.body), (v, sb));
        assert!(c.a.at == c.b.at);
        assert!(m
            .twin
            .implants
            .screws
            .iter()
            .any(|s| s.entry == c.a.at && s.body == v));
    }
    for b in &model.beams {
        assert!(b.a.body >= nb && b.b.body >= nb, "{}", b.name);
    }
    assert!(m
        .assumptions
        .iter()
        .any(|a| a.contains("elastic foundation")));
    // Rigid on request: no screw bodies, the rods on the vertebrae.
    let r = apply(&t, &scen(&format!("{ops}anchorage = \"rigid\"\n"))).unwrap();
    let (model, index) = r.fem_model(&case).unwrap();
    assert_eq!((model.bodies.len(), model.connectors.len()), (nb, 0));
    assert!(index.screw_bodies.is_empty());
    assert!(model.beams.iter().all(|b| b.a.body < nb && b.b.body < nb));
    assert!(r.assumptions.iter().any(|a| a.contains("rigidly fixed")));
    // Osteoporotic bone (lower HU in L4): a softer anchorage there, from the HU alone.
    let with_l4_hu = |hu: &dyn Fn(f64) -> f64| {
        let mut file = common::specimen_file(&["L3", "L4", "L5"]);
        for v in file.landmarks.vertebrae.iter_mut() {
            if v.level.name() == "L4" {
                v.trabecular_hu = hu(v.trabecular_hu);
            }
        }
        apply(&Twin::build(file).unwrap(), &scen(ops)).unwrap()
    };
    let soft = with_l4_hu(&|hu| hu * 0.5);
    for (a, b) in m.screws.iter().zip(&soft.screws) {
        let (ma, mb) = (
            a.anchorage_modulus_mpa.unwrap(),
            b.anchorage_modulus_mpa.unwrap(),
        );
        if a.level.name() == "L4" {
            assert!(mb < 0.7 * ma, "{ma} {mb}");
        } else {
            assert_eq!(ma, mb);
        }
    }
    // No HU for L4 (no cancellous core found): its screws stay rigidly fixed, the L5 ones
    // anchored, and the assumptions say which and why.
    let nohu = with_l4_hu(&|_| f64::NAN);
    for p in &nohu.screws {
        assert_eq!(
            p.anchorage_modulus_mpa.is_none(),
            p.level.name() == "L4",
            "{p:?}"
        );
    }
    let text = nohu
        .assumptions
        .iter()
        .find(|a| a.contains("screws L4, L5"))
        .unwrap();
    assert!(
        text.contains("elastic foundation")
            && text.contains("L4 left, L4 right rigidly fixed")
            && text.contains("trabecular HU is unknown"),
        "{text}"
    );
    let (model, _) = nohu.fem_model(&case).unwrap();
    assert_eq!(model.connectors.len(), 2);
}

#[test]
fn screw_size_rule() {
    use spinetwin_scenario::apply::screw_size;
    assert_eq!(screw_size(8.0, 50.0), (6.0, 40.0));
    assert_eq!(screw_size(4.0, 44.0), (4.5, 35.0));
    assert_eq!(screw_size(12.0, 45.0), (7.5, 35.0));
    assert_eq!(screw_size(7.4, 47.0), (5.5, 35.0));
}

#[test]
fn vertebroplasty_changes_nothing_mechanical_and_says_so() {
    let t = twin();
    let m = apply(
        &t,
        &scen("[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"L4\"\nfill_fraction = 0.25\n"),
    )
    .unwrap();
    assert_eq!(m.twin.fibres.len(), t.fibres.len());
    assert_eq!(m.twin.facets.len(), t.facets.len());
    assert!(m.twin.implants.beams.is_empty() && m.twin.implants.disc_blocks.is_empty());
    assert_eq!(m.cemented.len(), 1);
    assert_eq!(m.cemented[0].cement, BONE_CEMENT);
    assert!(m.changes[0].contains("PMMA, E 1937 MPa"), "{:?}", m.changes);
    let soft = apply(
        &t,
        &scen("[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"L4\"\nfill_fraction = 0.25\ncement_modulus_mpa = 600\n"),
    )
    .unwrap();
    assert_eq!(soft.cemented[0].cement.e_mpa, 600.0);
    assert!(
        soft.changes[0].contains("cement of E 600 MPa"),
        "{:?}",
        soft.changes
    );
    let e = invalid(
        &t,
        "[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"L4\"\nfill_fraction = 0.25\ncement_modulus_mpa = 20\n",
    );
    assert!(
        e.contains("cement_modulus_mpa = 20") && e.contains("100-5000 MPa"),
        "{e}"
    );
    // Its hybrid results are the intact ones (the demo and plan reuse them); any other
    // operation needs its own solve.
    assert!(m.hybrid_unchanged);
    let both = apply(
        &t,
        &scen("[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"L4\"\nfill_fraction = 0.25\n[[operation]]\nkind = \"laminectomy\"\nlevel = \"L4\"\n"),
    )
    .unwrap();
    assert!(!both.hybrid_unchanged);
    assert!(m
        .assumptions
        .iter()
        .any(|a| a.contains("motion segment") && a.contains("no nucleus pressure")));
    // The comparison report says so too.
    let cmp = spinetwin_scenario::compare(&t, &[], &[(&m, Vec::new())]);
    let html = cmp.to_html();
    assert!(html.contains("Bone stress needs deformable bone"));
    assert!(html.contains("No bone check: the CT was not given"));
}

#[test]
fn cemented_vertebra_compressed_from_the_ct_stiffens() {
    use spinetwin_anatomy::{Level, LevelRange};
    let ph = spinetwin_phantom::generate(&spinetwin_phantom::PhantomSpec {
        levels: LevelRange::new(Level::L3, Level::L5, false).unwrap(),
        spacing_mm: 2.0,
        bmd_scale: 0.7,
        ..Default::default()
    })
    .unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap();
    let fill = |level: Level, e_mpa: f64| CementFill {
        level,
        fraction: 0.25,
        cement: spinetwin_model::bone::Isotropic { e_mpa, nu: 0.3 },
    };
    let checks = spinetwin_scenario::cement_checks(
        &ph.ct,
        &ph.labels,
        &lm,
        &[fill(Level::L4, BONE_CEMENT.e_mpa)],
        2.0,
    )
    .unwrap();
    let c = &checks[0];
    assert_eq!(c.cement_modulus_mpa, 1937.0);
    assert_eq!(c.level, "L4");
    // Cement was placed, and the intact vertebra is of bone stiffness.
    assert!(c.cement_mm3 > 1000.0, "{c:?}");
    assert!(c.stiffness_n_per_mm[0] > 1000.0, "{c:?}");
    assert!(
        c.stiffness_change_pct > 5.0,
        "cement must stiffen the body: {c:?}"
    );
    assert!(c.bone_p95_per_kn.iter().all(|s| s.is_finite() && *s > 0.0));
    // Both neighbours (L3 above, L5 below) checked as motion segments through their discs;
    // cement stiffens each segment a little and its neighbour carries about the same stress.
    let segs: Vec<&str> = c.adjacent.iter().map(|a| a.segment.as_str()).collect();
    assert_eq!(segs, ["L3-L4", "L4-L5"], "{:?}", c.adjacent_notes);
    for a in &c.adjacent {
        assert!(a.stiffness_n_per_mm[1] > a.stiffness_n_per_mm[0], "{a:?}");
        assert!(a.adjacent_endplate_change_pct.abs() < 10.0, "{a:?}");
    }
    // Section pictures of both, as PNG.
    assert!(c
        .sections
        .iter()
        .all(|p| p.len() > 100 && p.starts_with(&[0x89, b'P', b'N', b'G'])));
    // A low-modulus cement (a quarter of PMMA's modulus) in the same place stiffens the
    // body less, and still more than not at all.
    let soft =
        spinetwin_scenario::cement_checks(&ph.ct, &ph.labels, &lm, &[fill(Level::L4, 500.0)], 2.0)
            .unwrap();
    let s = &soft[0];
    println!(
        "L4 25 % fill: PMMA {:+.1} %, 500 MPa cement {:+.1} %",
        c.stiffness_change_pct, s.stiffness_change_pct
    );
    assert_eq!(s.cement_mm3, c.cement_mm3);
    assert!(
        s.stiffness_change_pct > 0.0 && s.stiffness_change_pct < c.stiffness_change_pct,
        "500 MPa {:+.1} % against PMMA {:+.1} %",
        s.stiffness_change_pct,
        c.stiffness_change_pct
    );
    // A level without landmarks is an error naming it.
    let e =
        spinetwin_scenario::cement_checks(&ph.ct, &ph.labels, &lm, &[fill(Level::L1, 1937.0)], 2.0)
            .unwrap_err();
    assert!(e.contains("L1"), "{e}");
}

/// An L3-L5 phantom at 1 mm, the landmarks from its reference labels (with the canal) and
/// the twin built on them.
fn reference_twin() -> (
    spinetwin_phantom::Phantom,
    spinetwin_segment::landmarks::SpineLandmarks,
    Twin,
) {
    use spinetwin_anatomy::{Level, LevelRange};
    use spinetwin_model::twin::{Fidelity, TwinFile, TwinParams, TWIN_SCHEMA_VERSION};
    let ph = spinetwin_phantom::generate(&spinetwin_phantom::PhantomSpec {
        levels: LevelRange::new(Level::L3, Level::L5, false).unwrap(),
        ..Default::default()
    })
    .unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap();
    let t = Twin::build(TwinFile {
        schema_version: TWIN_SCHEMA_VERSION,
        fidelity: Fidelity::Hybrid,
        source: "phantom L3-L5 reference labels (test)".into(),
        pseudonym: String::new(),
        params: TwinParams::default(),
        landmarks: lm.clone(),
    })
    .unwrap();
    (ph, lm, t)
}

#[test]
fn decompressions_remove_bone_from_the_deformable_mesh() {
    let (ph, _, t) = reference_twin();
    let options = spinetwin_model::full::FullOptions::default();
    let mesh = |ops: &str| {
        let m = apply(&t, &scen(ops)).unwrap();
        let b = m
            .twin
            .deformable_bones(&ph.ct, &ph.labels, &options)
            .unwrap();
        assert_eq!(b.len(), 1, "L4 alone is deformable");
        (
            m,
            b[0].mesh.num_elements(),
            b[0].resected_mm3,
            b[0].dropped_fraction(),
        )
    };
    let (_, intact, none, _) = mesh("[[operation]]\nkind = \"nucleotomy\"\nsegment = \"L3-L4\"\n");
    assert_eq!(none, 0.0);
    let (lam, n_lam, cut_lam, drop_lam) =
        mesh("[[operation]]\nkind = \"laminectomy\"\nlevel = \"L4\"\n");
    let (hemi, n_hemi, cut_hemi, _) =
        mesh("[[operation]]\nkind = \"hemilaminectomy\"\nlevel = \"L4\"\nside = \"left\"\n");
    let (facet, n_facet, cut_facet, drop_facet) =
        mesh("[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"left\"\n");
    let (medial, n_medial, cut_medial, drop_medial) = mesh(
        "[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"left\"\nextent = \"partial\"\n",
    );
    println!(
        "L4 elements intact {intact}; laminectomy {n_lam} ({:.2} cm^3 removed, {:.1} % dropped), left hemilaminectomy {n_hemi} ({:.2} cm^3), left L4-L5 facetectomy {n_facet} ({:.2} cm^3, {:.1} % dropped), medial half {n_medial} ({:.2} cm^3, {:.1} % dropped)",
        cut_lam / 1000.0,
        100.0 * drop_lam,
        cut_hemi / 1000.0,
        cut_facet / 1000.0,
        100.0 * drop_facet,
        cut_medial / 1000.0,
        100.0 * drop_medial
    );
    // The medial facetectomy takes bone from both processes too, less than the total one.
    assert_eq!(medial.twin.implants.resections.len(), 2);
    assert!(
        cut_medial > 0.0 && cut_medial < cut_facet && n_medial > n_facet && n_medial < intact,
        "medial {cut_medial} mm^3 ({n_medial} elements), total {cut_facet} ({n_facet})"
    );
    assert!(drop_medial < 0.02, "{drop_medial}");
    assert_eq!(lam.twin.implants.resections.len(), 1);
    assert_eq!(hemi.twin.implants.resections.len(), 1);
    // L4's inferior and L5's superior articular process.
    assert_eq!(facet.twin.implants.resections.len(), 2);
    assert!(
        cut_lam > 1000.0 && n_lam < intact,
        "{cut_lam} mm^3, {n_lam} of {intact}"
    );
    assert!(cut_hemi > 200.0 && cut_hemi < 0.6 * cut_lam && n_hemi < intact && n_hemi > n_lam);
    assert!(cut_facet > 200.0 && n_facet < intact);
    // A decompression detaches no sizeable piece of the vertebra.
    assert!(
        drop_lam < 0.02 && drop_facet < 0.02,
        "{drop_lam} {drop_facet}"
    );
}

#[test]
fn screws_are_checked_for_a_breach_of_the_pedicle() {
    use spinetwin_anatomy::Level;
    let (ph, lm, t) = reference_twin();
    let screws = |extra: &str| {
        apply(
            &t,
            &scen(&format!(
                "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\n{extra}"
            )),
        )
        .unwrap()
        .screws
    };
    // Screws sized from the pedicle (80 % of its width) stay in the bone: grade A or B.
    let planned = screws("");
    let b = spinetwin_scenario::breach_checks(&ph.labels, &lm, &planned).unwrap();
    assert_eq!(b.len(), 4);
    for s in &b {
        println!("{s:?}");
        assert!(
            s.acceptable() && s.outside_fraction < 0.02 && s.canal_samples == 0,
            "{s:?}"
        );
    }
    // The same screws moved 3 mm past their pedicle's wall (the margin between the screw and
    // the narrowest bone chord, plus 3 mm) towards the midline breach the medial wall into
    // the canal; moved laterally they breach laterally. Grade C (2-4 mm) or D (4-6 mm).
    for (sign, expect) in [(-1.0, "medial"), (1.0, "lateral")] {
        let moved: Vec<_> = planned
            .iter()
            .map(|p| {
                let v = lm.vertebra(p.level).unwrap();
                let lateral = if p.side == spinetwin_scenario::Side::Left {
                    1.0
                } else {
                    -1.0
                };
                let shift = sign * ((p.pedicle_min_width_mm - p.diameter_mm) / 2.0 + 3.0);
                let d = v.frame.x.map(|c| c * lateral * shift);
                let mut q = p.clone();
                for (k, dk) in d.iter().enumerate() {
                    q.entry[k] += dk;
                    q.tip[k] += dk;
                    q.head[k] += dk;
                }
                q
            })
            .collect();
        let b = spinetwin_scenario::breach_checks(&ph.labels, &lm, &moved).unwrap();
        for s in &b {
            println!("{expect} 3 mm past the wall: {s:?}");
            assert!(matches!(s.grade, 'C' | 'D'), "{s:?}");
            assert_eq!(s.direction.as_deref(), Some(expect), "{s:?}");
            assert_eq!(s.canal_samples > 0, expect == "medial", "{s:?}");
        }
    }
    // A screw wider than the pedicle is refused before any solve.
    let w = lm
        .vertebra(Level::L4)
        .unwrap()
        .pedicles
        .as_ref()
        .unwrap()
        .left
        .min_width_mm;
    let m = invalid(
        &t,
        &format!(
            "[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nscrew_diameter_mm = {}\n",
            (w + 1.0).ceil()
        ),
    );
    assert!(m.contains("wider than the L4 left pedicle"), "{m}");
}
