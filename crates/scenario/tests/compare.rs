//! The comparison tables from hand-made results (no solves): changes in per cent, removed
//! facets, rod stress, and non-converged cases never shown as numbers.

mod common;

use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{BeamResult, CaseResult, Sample, SegmentResult, Twin};
use spinetwin_scenario::matched::MatchedCase;
use spinetwin_scenario::{apply, compare, Scenario};

fn result(
    t: &Twin,
    case: &LoadCase,
    rot: f64,
    facets: [Option<f64>; 2],
    converged: bool,
) -> CaseResult {
    let segments = (0..t.discs.len())
        .map(|k| SegmentResult {
            upper: t.levels[k],
            lower: t.levels[k + 1],
            rotation_deg: [rot, 0.0, 0.0],
            idp_mpa: 0.5,
            facet_force_n: facets,
            stop_force_n: [None, None],
            facet_pressure_max_mpa: [None, None],
            disc_height_change_mm: 0.0,
            annulus_fibre_strain_max: 0.0,
        })
        .collect();
    let beams = t
        .implants
        .beams
        .iter()
        .map(|b| BeamResult {
            name: b.name.clone(),
            max_von_mises_mpa: 120.0,
            axial_force_n: 0.0,
        })
        .collect();
    CaseResult {
        case: case.clone(),
        converged,
        failure: (!converged).then(|| "diverged".into()),
        deformed: None,
        implant_loads: Vec::new(),
        bone_field: None,
        seated: None,
        iterations: 1,
        equations: 1,
        seconds: 0.0,
        samples: if converged {
            vec![Sample {
                moment_nm: 7.5,
                total_rotation_deg: [rot * t.discs.len() as f64, 0.0, 0.0],
                segments,
                beams,
                bone_stress: Vec::new(),
                anchorages: Vec::new(),
            }]
        } else {
            Vec::new()
        },
    }
}

/// The page opens on the twin's pseudonym, what the model holds and the validation status
/// of the model (the committed `spinetwin validate` table), and says when the twin's
/// parameters are not the validated ones.
#[test]
fn report_header_names_the_twin_by_pseudonym_and_states_the_validation() {
    let mut t = common::specimen(&["L3", "L4", "L5"]);
    t.file.pseudonym = "STUDY-07".into();
    let flex = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let intact = vec![result(&t, &flex, 4.0, [None, None], true)];
    let html = compare(&t, &intact, &[]).to_html();
    assert!(html.contains("<b>STUDY-07</b>"));
    assert!(html.contains("L3-L5 (3 vertebrae, 2 discs)"), "anatomy row");
    assert!(html.contains("<tr><th>Load cases</th><td>flexion_7.5nm</td></tr>"));
    let rows = spinetwin_model::validate::committed();
    let passed = rows.iter().filter(|r| r.pass).count();
    assert!(html.contains(&format!("<b>{passed} of {}</b>", rows.len())));
    // Every row outside its band is listed above the fold, with its source.
    let failed: Vec<_> = rows.iter().filter(|r| !r.pass).collect();
    assert!(html.contains(&format!("Not met ({}):", failed.len())));
    for r in &failed {
        assert!(html.contains(&r.target.describe()), "{}", r.target.id);
    }
    assert_eq!(html.matches(">outside</td>").count(), 2 * failed.len());
    assert!(html.contains("This twin uses those default parameters."));
    // A twin with other parameters says which, and that the validation does not cover it.
    let mut other = t.clone();
    other.file.params.facets.initial_gap_mm = 0.3;
    let cmp = compare(&other, &intact, &[]);
    let html = cmp.to_html();
    assert!(html.contains("differ from the validated defaults"));
    assert!(
        html.contains("facets.initial_gap_mm: 0.3 (default 0.1)"),
        "{html}"
    );
    let json = serde_json::to_value(&cmp).unwrap();
    assert_eq!(json["model"]["pseudonym"], "STUDY-07");
    assert_eq!(
        json["model"]["validation"].as_array().unwrap().len(),
        rows.len()
    );
    // A twin from before pseudonyms says so instead of showing nothing.
    other.file.pseudonym.clear();
    assert!(compare(&other, &intact, &[])
        .to_html()
        .contains("no pseudonym"));
}

#[test]
fn comparison_rows_csv_and_html() {
    let t = common::specimen(&["L3", "L4", "L5"]);
    let s = Scenario::parse(
        "name = \"fx\"\n[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L3\", \"L4\"]\n",
        "fx.toml",
    )
    .unwrap();
    let m = apply(&t, &s).unwrap();
    let flex = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let ext = LoadCase::pure_moment(Motion::Extension, 7.5, 0.0);
    let intact = vec![
        result(&t, &flex, 4.0, [Some(10.0), Some(12.0)], true),
        result(&t, &ext, -2.0, [Some(30.0), Some(20.0)], true),
    ];
    let scen = vec![
        result(&m.twin, &flex, 5.0, [Some(15.0), None], true),
        result(&m.twin, &ext, 0.0, [None, None], false),
    ];
    let cmp = compare(&t, &intact, &[(&m, scen)]);
    let row = |case: &str, level: &str, metric: &str| {
        cmp.rows
            .iter()
            .find(|r| r.load_case == case && r.level == level && r.metric == metric)
            .unwrap_or_else(|| panic!("{case} {level} {metric}"))
    };
    let r = row("flexion_7.5nm", "L4-L5", "rotation_deg");
    assert_eq!(r.change_pct, Some(25.0));
    // Moment-rotation curves: both segments of the intact twin in both cases, the
    // scenario's only where it converged; each from the origin, in the loaded plane.
    let curve = |twin: &str, case: &str, seg: &str| {
        cmp.curves
            .iter()
            .find(|c| c.twin == twin && c.load_case == case && c.segment == seg)
            .map(|c| c.points.clone())
    };
    assert_eq!(cmp.curves.len(), 2 * 2 + 2);
    assert_eq!(
        curve("intact", "extension_7.5nm", "L4-L5"),
        Some(vec![(0.0, 0.0), (7.5, 2.0)])
    );
    assert_eq!(
        curve("fx", "flexion_7.5nm", "L3-L4"),
        Some(vec![(0.0, 0.0), (7.5, 5.0)])
    );
    assert_eq!(curve("fx", "extension_7.5nm", "L3-L4"), None);
    // How sure: the least-checked operation sets the headline, each says what was
    // compared, and the failed case and the validation status are named.
    let sure = cmp.how_sure(&cmp.scenarios[0]);
    assert!(
        sure.starts_with("How sure: the model's response to the operations of this scenario ranges from checked against in-vitro data to in part known to disagree with published data."),
        "{sure}"
    );
    assert!(sure.contains("Zeng et al. 2017") && sure.contains("Pedicle screws and rods:"));
    assert!(
        sure.contains("load cases that did not converge would show is unknown"),
        "{sure}"
    );
    // The terminal text points at nothing on a page; the page adds where to look.
    assert!(!sure.contains("above") && !sure.contains("below"), "{sure}");
    let (passed, total) = cmp.model.validation_passed();
    assert!(sure.contains(&format!(
        "meets {passed} of {total} published validation results"
    )));
    assert!(!sure.contains("differ from the validated defaults"));
    assert!(cmp.paragraph(&cmp.scenarios[0]).contains(&sure));
    let mut other = t.clone();
    other.file.params.ligaments.prestrain = 0.02;
    let c2 = compare(&other, &intact, &[(&m, Vec::new())]);
    assert!(c2
        .how_sure(&c2.scenarios[0])
        .contains("differ from the validated defaults"));
    let html = cmp.to_html();
    assert!(html.contains("<div class='sure'><b>How sure:</b> the model&#39;s response"));
    assert!(html.contains("<li>Bilateral total facetectomy: axial rotation"));
    assert!(
        html.contains("(Validation status above; the main assumptions are listed below.)</div>")
    );
    assert!(html.contains("Moment-rotation curves"));
    assert_eq!(
        html.matches("<polyline").count(),
        2 * 2 + 2,
        "one line per curve"
    );
    assert_eq!(
        html.matches("stroke-dasharray").count(),
        4,
        "the intact ones dashed"
    );
    let r = row("flexion_7.5nm", "L4-L5", "facet_force_right_n");
    assert_eq!((r.value, r.change_pct), (None, None));
    assert!(r.note.contains("removed"), "{}", r.note);
    // Extension: intact rotation -2 deg is +2 deg in the loaded plane.
    let r = row("extension_7.5nm", "L3-L4", "rotation_deg");
    assert_eq!(r.intact, Some(2.0));
    assert_eq!(r.value, None);
    assert!(r.note.contains("scenario not converged"));
    let rods: Vec<_> = cmp
        .rows
        .iter()
        .filter(|r| r.metric == "rod_peak_von_mises_mpa")
        .collect();
    assert_eq!(rods.len(), 4, "2 rods x 2 cases");
    assert_eq!(cmp.scenarios[0].rod_peak_von_mises_mpa, Some(120.0));
    assert_eq!(cmp.scenarios[0].converged, [1, 2]);
    let csv = cmp.to_csv();
    assert!(
        csv.starts_with("scenario,load_case,level,metric,intact,scenario_value,change_pct,note,control,scenario_moment_nm\n")
    );
    assert!(
        csv.contains("fx,flexion_7.5nm,L4-L5,rotation_deg,4.0000,5.0000,25.0,"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "fx,extension_7.5nm,L3-L4,rotation_deg,2.0000,not converged,,scenario not converged"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("fx,flexion_7.5nm,L3-L5,total_rotation_deg,8.0000,10.0000,25.0,,load,7.50\n"),
        "{csv}"
    );
    assert!(cmp.rows.iter().all(|r| r.control == "load"));
    let html = cmp.to_html();
    assert!(html.contains("not converged") && html.contains("class='up1'"));
    assert!(!html.contains("ROM-matched"));
    assert!(html.contains("460 MPa") && !html.contains("<script"));
    // Rod table: 120 MPa is 26 % of the limit; the failed case says so.
    assert!(html.contains("von Mises, load control (MPa)"), "{html}");
    assert!(html.contains("<td>120</td><td>26 %</td>"), "{html}");
    assert!(html.contains("<td><span class='nc'>not converged</span></td><td>-</td>"));
    assert!(!html.contains("von Mises, ROM-matched"));
    // Under ROM-matched control the rod table gains the stress at M'.
    let mut cmp = cmp;
    let mut at = result(&m.twin, &flex, 4.0, [Some(15.0), None], true);
    at.case = LoadCase::pure_moment(Motion::Flexion, 9.0, 0.0);
    for b in &mut at.samples[0].beams {
        b.max_von_mises_mpa = 150.0;
    }
    at.samples[0].moment_nm = 9.0;
    cmp.add_rom_matched(
        &m,
        &intact,
        vec![MatchedCase {
            scenario: "fx".into(),
            load_case: "flexion_7.5nm".into(),
            nominal_moment_nm: 7.5,
            intact_total_rom_deg: Some(8.0),
            load_total_rom_deg: Some(10.0),
            matched_moment_nm: Some(9.0),
            matched_total_rom_deg: Some(8.0),
            solves: 1,
            matched: true,
            note: String::new(),
            seconds: 0.0,
            trials: vec![(9.0, Some(8.0))],
            result: Some(at),
        }],
    );
    let html = cmp.to_html();
    assert!(html.contains("von Mises, ROM-matched (MPa)"), "{html}");
    assert!(
        html.contains("<td>120</td><td>150</td><td>9.0</td><td>33 %</td>"),
        "{html}"
    );
    // Intact failures are reported on the intact side.
    let intact_nc = vec![result(&t, &flex, 4.0, [None, None], false)];
    let scen = vec![result(&m.twin, &flex, 5.0, [None, None], true)];
    let cmp = compare(&t, &intact_nc, &[(&m, scen)]);
    assert!(cmp.to_csv().contains(
        "fx,flexion_7.5nm,L3-L4,rotation_deg,not converged,5.0000,,intact not converged"
    ));
}

/// Full-fidelity results carry bone stress per deformable vertebra: the comparison gains
/// one row per vertebra and zone (screws and cement only where the scenario has them, with
/// the reason the intact value is missing), the segment table stays per segment, the
/// report shows a bone table and the paragraph names the zones that changed.
#[test]
fn bone_stress_rows_at_the_full_fidelity() {
    use spinetwin_model::full::BoneStress;
    let t = common::specimen(&["L3", "L4", "L5"]);
    let s = Scenario::parse(
        "name = \"cement\"\n[[operation]]\nkind = \"vertebroplasty\"\nlevel = \"L4\"\nfill_fraction = 0.3\n",
        "c.toml",
    )
    .unwrap();
    let m = apply(&t, &s).unwrap();
    let flex = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let bone = |p95: f64, cement: Option<f64>, ratio: f64| BoneStress {
        level: "L4".into(),
        body_p50_mpa: 0.3,
        body_p95_mpa: p95,
        posterior_p95_mpa: Some(0.5),
        around_screws_p95_mpa: None,
        superior_endplate_p95_mpa: Some(1.0),
        inferior_endplate_p95_mpa: None,
        cement_p95_mpa: cement,
        superior_centre_ratio_p95: Some(ratio),
        inferior_centre_ratio_p95: None,
        around_screws_ratio_p95: None,
        max_mpa: 2.0,
    };
    let mut intact = result(&t, &flex, 4.0, [Some(10.0), Some(12.0)], true);
    intact.samples[0].bone_stress = vec![bone(1.0, None, 0.4)];
    let mut scen = result(&m.twin, &flex, 4.0, [Some(10.0), Some(12.0)], true);
    scen.samples[0].bone_stress = vec![bone(0.8, Some(0.9), 1.2)];
    let mut cmp = compare(&t, &[intact], &[(&m, vec![scen])]);
    let hybrid = cmp.how_sure(&cmp.scenarios[0]);
    assert!(!hybrid.contains("deformable vertebrae, where"), "{hybrid}");
    cmp.set_full_fidelity(3.0, false);
    // The evidence was measured on the hybrid twin: a full-fidelity comparison says so.
    let full = cmp.how_sure(&cmp.scenarios[0]);
    assert!(
        full.contains("These checks were made with the hybrid model")
            && full.contains("in the hybrid model the vertebrae are rigid"),
        "{full}"
    );
    let row = |metric: &str| {
        cmp.rows
            .iter()
            .find(|r| r.metric == metric && r.level == "L4")
    };
    let body = row("bone_body_p95_mpa").expect("body row");
    assert_eq!((body.intact, body.value), (Some(1.0), Some(0.8)));
    assert!((body.change_pct.unwrap() + 20.0).abs() < 1e-9);
    assert!(body.note.contains("around the cement"), "{}", body.note);
    let cement = row("cement_p95_mpa").expect("cement row");
    assert_eq!((cement.intact, cement.value), (None, Some(0.9)));
    assert!(cement.note.contains("no cement in the intact spine"));
    assert!(row("bone_superior_endplate_p95_mpa").is_some());
    // Zones that neither model has give no row.
    assert!(row("bone_inferior_endplate_p95_mpa").is_none());
    assert!(row("bone_around_screws_p95_mpa").is_none());
    assert!(row("bone_around_screws_ratio_p95").is_none());
    let ratio = row("bone_superior_centre_ratio_p95").expect("ratio row");
    assert_eq!((ratio.intact, ratio.value), (Some(0.4), Some(1.2)));
    // No cage in a vertebroplasty: the endplate's load against strength, not subsidence.
    assert!(
        ratio.note.contains("under the nucleus") && !ratio.note.contains("subsidence"),
        "{}",
        ratio.note
    );
    assert!(!cmp.scenarios[0].needs_full_fidelity);
    assert!(cmp.scenarios[0].bone_check_note.is_none());
    let html = cmp.to_html();
    assert!(html.contains("Bone stress (deformable vertebrae)"));
    assert!(html.contains("intact &rarr; scenario, under load control."));
    // The stress over strength in its own table, red from 1.
    assert!(html.contains("Load against strength"), "{html}");
    assert!(
        html.contains("<td style='background:#f4b6b6'") && html.contains("0.40 &rarr; 1.20"),
        "{html}"
    );
    assert!(html.contains("Full fidelity: the vertebrae between"));
    // The segment table lists segments only: L4 has its row in the bone stress table and
    // in the load-against-strength table.
    assert_eq!(html.matches("<td class='l'>L4</td>").count(), 2, "{html}");
    let p = cmp.paragraph(&cmp.scenarios[0]);
    assert!(p.contains("L4 body -20 %"), "{p}");
    // The ratio is named once, by value, not in the list of stress changes.
    assert!(
        p.contains("is 1.20, under the L4 superior endplate's centre, in flexion_7.5nm (intact 0.40): above 1"),
        "{p}"
    );
    assert!(
        !p.contains("superior endplate, under the nucleus or cage +"),
        "{p}"
    );
    assert!(!p.contains("Cement has no mechanical effect"), "{p}");
}

#[test]
fn a_seated_distraction_is_summarised_and_said_in_the_paragraph() {
    let t = common::specimen(&["L3", "L4", "L5"]);
    let s = Scenario::parse(
        "name = \"alif\"\n[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"alif\"\ndistraction_mm = 2.0\n",
        "alif.toml",
    )
    .unwrap();
    let m = apply(&t, &s).unwrap();
    let flex = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let intact = vec![result(&t, &flex, 4.0, [None, None], true)];
    let mut r = result(&m.twin, &flex, 3.0, [None, None], true);
    // Seated: L4-L5 opened by 2.2 mm and tilted 2.24 deg into lordosis; L3-L4 unmoved.
    let mut seated = r.samples[0].clone();
    seated.moment_nm = 0.0;
    for g in &mut seated.segments {
        let moved = g.upper.name() == "L4";
        g.rotation_deg = [if moved { -2.24 } else { 0.01 }, 0.0, 0.0];
        g.disc_height_change_mm = if moved { 2.21 } else { 0.0 };
    }
    r.seated = Some(seated);
    let cmp = compare(&t, &intact, &[(&m, vec![r])]);
    let sc = &cmp.scenarios[0];
    assert_eq!(sc.seated.len(), 1, "{:?}", sc.seated);
    assert_eq!(sc.seated[0].level, "L4-L5");
    assert_eq!(sc.seated[0].disc_height_change_mm, 2.21);
    let p = cmp.paragraph(sc);
    assert!(
        p.contains("L4-L5 disc height +2.2 mm and 2.2 deg more lordotic"),
        "{p}"
    );
    let json = serde_json::to_string(&cmp).unwrap();
    assert!(json.contains("\"seated\":[{\"level\":\"L4-L5\""), "{json}");
    // Without a seated pose, nothing is said.
    let plain = compare(
        &t,
        &intact,
        &[(&m, vec![result(&m.twin, &flex, 3.0, [None, None], true)])],
    );
    assert!(plain.scenarios[0].seated.is_empty());
    assert!(!plain.paragraph(&plain.scenarios[0]).contains("Driving in"));
}

#[test]
fn screw_stress_at_the_entry_is_the_rod_load_carried_down_the_screw() {
    use nalgebra::Vector3;
    use spinetwin_model::twin::{ImplantLoad, ImplantLoadKind};
    use spinetwin_scenario::compare::{screw_entry_stress, SCREW_CORE_RATIO};
    let t = common::specimen(&["L3", "L4", "L5"]);
    let s = Scenario::parse(
        "name = \"sc\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nsides = \"left\"\n",
        "sc.toml",
    )
    .unwrap();
    let m = apply(&t, &s).unwrap();
    let flex = LoadCase::pure_moment(Motion::Flexion, 7.5, 0.0);
    let mut r = result(&m.twin, &flex, 1.0, [None, None], true);
    // 100 N across the L4 screw at its head (10 mm out of the bone), half from each of two
    // rods: a cantilever moment of 1000 N mm at the entry, no axial force or torque.
    let screw = &m.twin.implants.screws[0];
    let (head, entry, tip) = (
        Vector3::from(screw.head),
        Vector3::from(screw.entry),
        Vector3::from(screw.tip),
    );
    let axis = (tip - entry).normalize();
    let across = axis.cross(&Vector3::x()).normalize();
    for k in 0..2 {
        r.implant_loads.push(ImplantLoad {
            name: format!("rod {k}"),
            body: screw.body,
            kind: ImplantLoadKind::Rod {
                at: screw.head,
                force_n: (across * 50.0).into(),
                moment_nmm: [0.0; 3],
            },
        });
    }
    let got = screw_entry_stress(&m, &r);
    assert_eq!(got.len(), 1, "{got:?}");
    let d = 2.0 * screw.radius_mm * SCREW_CORE_RATIO;
    let want = 100.0 * (head - entry).norm() / (std::f64::consts::PI * d.powi(3) / 32.0);
    assert!(
        (got[0].von_mises_mpa - want).abs() < 1e-9 * want,
        "{got:?} {want}"
    );
    assert_eq!(got[0].name, screw.name);
    // All across the screw: 100 N of toggle load, no pull-out.
    assert!((got[0].transverse_force_n - 100.0).abs() < 1e-9);
    assert!(got[0].pullout_force_n.abs() < 1e-9);
    // A pure torque about the screw's own axis: tau = T / (pi d^3 / 16), von Mises sqrt(3) tau.
    r.implant_loads.truncate(0);
    r.implant_loads.push(ImplantLoad {
        name: "rod".into(),
        body: screw.body,
        kind: ImplantLoadKind::Rod {
            at: screw.head,
            force_n: [0.0; 3],
            moment_nmm: (axis * 500.0).into(),
        },
    });
    let got = screw_entry_stress(&m, &r);
    let tau = 500.0 / (std::f64::consts::PI * d.powi(3) / 16.0);
    assert!((got[0].von_mises_mpa - 3f64.sqrt() * tau).abs() < 1e-9 * tau);
    // In the comparison: a row per screw, the peak in the summary; the L5 screw carries no
    // rod load here and says so.
    let intact = vec![result(&t, &flex, 2.0, [None, None], true)];
    let cmp = compare(&t, &intact, &[(&m, vec![r])]);
    let rows: Vec<_> = cmp
        .rows
        .iter()
        .filter(|r| r.metric == "screw_peak_von_mises_mpa")
        .collect();
    assert_eq!(rows.len(), 2);
    assert!((rows[0].value.unwrap() - 3f64.sqrt() * tau).abs() < 1e-9 * tau);
    assert_eq!(rows[1].value, None);
    assert!(rows[1].note.contains("no rod"), "{}", rows[1].note);
    assert_eq!(cmp.scenarios[0].screw_peak_von_mises_mpa, rows[0].value);
    let html = cmp.to_html();
    assert!(html.contains("screw at its entry"));
    assert!(html.contains("pull-out force, load control (N; negative: pushed in)"));
    let pulls = cmp
        .rows
        .iter()
        .filter(|r| r.metric == "screw_pullout_force_n")
        .count();
    assert_eq!(pulls, 2);
    // A pull along the axis towards the head: pull-out force positive, the stress N / A.
    let mut r = result(&m.twin, &flex, 1.0, [None, None], true);
    r.implant_loads.push(ImplantLoad {
        name: "rod".into(),
        body: screw.body,
        kind: ImplantLoadKind::Rod {
            at: screw.head,
            force_n: (-axis * 80.0).into(),
            moment_nmm: [0.0; 3],
        },
    });
    let got = screw_entry_stress(&m, &r);
    assert!((got[0].pullout_force_n - 80.0).abs() < 1e-9 && got[0].transverse_force_n < 1e-9);
    let area = std::f64::consts::PI * d * d / 4.0;
    assert!((got[0].von_mises_mpa - 80.0 / area).abs() < 1e-9);
}

/// The report's bar charts: one bar per segment and load case with a change, below the
/// zero line for a drop, cut at the scale's end with the value written for a change
/// beyond +/- 200 %, none for a case without a value, and no chart without changes.
#[test]
fn change_bars_show_each_change_on_its_side_of_zero() {
    use spinetwin_scenario::compare::{Comparison, ComparisonRow, CONTROL_LOAD};
    let row = |level: &str, case: &str, pct: Option<f64>| ComparisonRow {
        scenario: "fusion".into(),
        load_case: case.into(),
        level: level.into(),
        metric: "rotation_deg".into(),
        intact: Some(2.0),
        value: pct.map(|p| 2.0 * (1.0 + p / 100.0)),
        change_pct: pct,
        note: String::new(),
        control: CONTROL_LOAD.into(),
        scenario_moment_nm: Some(7.5),
    };
    let cmp = Comparison {
        model: spinetwin_model::summary::ModelSummary::of(&common::specimen(&["L3", "L4"])),
        load_cases: vec!["flexion_7.5nm".into(), "extension_7.5nm".into()],
        intact_converged: vec![true, true],
        scenarios: Vec::new(),
        rows: vec![
            row("L3-L4", "flexion_7.5nm", Some(10.0)),
            row("L4-L5", "flexion_7.5nm", Some(-80.0)),
            row("L5-S1", "flexion_7.5nm", Some(4.0)),
            row("L3-L4", "extension_7.5nm", None),
            row("L4-L5", "extension_7.5nm", Some(-75.0)),
            row("L5-S1", "extension_7.5nm", Some(350.0)),
        ],
        matched: Vec::new(),
        snapshots: Vec::new(),
        full_fidelity_element_mm: None,
        full_fidelity_cage_friction: false,
        curves: Vec::new(),
    };
    let svg = cmp.change_bars_svg("fusion", "rotation_deg", CONTROL_LOAD, "ROM change");
    // (y, height) of every bar, and the zero line's y (the dark grid line).
    let attr = |tag: &str, name: &str| -> f64 {
        let at = tag.find(&format!(" {name}='")).unwrap() + name.len() + 3;
        tag[at..].split('\'').next().unwrap().parse().unwrap()
    };
    let bars: Vec<&str> = svg.split("<rect class='bar'").skip(1).collect();
    assert_eq!(bars.len(), 5, "{svg}");
    let zero_at = svg.find("stroke='#333'").unwrap();
    let zero_tag = &svg[svg[..zero_at].rfind("<line").unwrap()..zero_at + 14];
    let zero = attr(zero_tag, "y1");
    let find = |label: &str| {
        let b = bars.iter().find(|b| b.contains(label)).unwrap();
        (attr(b, "y"), attr(b, "height"))
    };
    let (y, hgt) = find("L4-L5 flexion_7.5nm: -80.0 %");
    assert!(
        (y - zero).abs() < 0.11 && hgt > 10.0,
        "a drop hangs below zero"
    );
    let (y, hgt) = find("L3-L4 flexion_7.5nm: +10.0 %");
    assert!(
        (y + hgt - zero).abs() < 0.11 && hgt > 1.0,
        "a rise stands on zero"
    );
    // -80 % is eight times as tall as +10 % (heights are written to 0.1 px).
    let ratio = find("L4-L5 flexion_7.5nm").1 / hgt;
    assert!((ratio - 8.0).abs() < 8.0 * 0.1 / hgt + 0.01, "{ratio}");
    // +350 % is cut at the scale's end (200 %) and labelled.
    let (_, cut) = find("L5-S1 extension_7.5nm: +350.0 %");
    assert!(
        (cut / hgt - 20.0).abs() < 20.0 * 0.1 / hgt + 0.01,
        "{cut} vs {hgt}"
    );
    assert!(svg.contains(">+350</text>"));
    // The load cases' legend, and nothing for a metric without rows.
    assert!(svg.contains(">flexion_7.5nm</text>") && svg.contains(">extension_7.5nm</text>"));
    assert!(cmp
        .change_bars_svg("fusion", "idp_mpa", CONTROL_LOAD, "IDP")
        .is_empty());
}
