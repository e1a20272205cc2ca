//! Ligament laws against the published tables, fibre splitting, attachment geometry.

use spinetwin_anatomy::Level;
use spinetwin_fem::nl::SpringLaw;
use spinetwin_model::ligament::{
    attachment_pairs, attachment_pairs_with, fibre_law, law_force, ligament_law, CapsuleModel,
    Ligament, LigamentSet,
};
use spinetwin_segment::landmarks::{
    ArticularSurface, Endplate, Frame, Sides, VertebraLandmarks, P3,
};
use std::f64::consts::PI;

fn endplate(z: f64, up: bool) -> Endplate {
    let m = 72;
    let s = if up { 1.0 } else { -1.0 };
    let outline = (0..m)
        .map(|k| {
            let phi = -PI / 2.0 + s * 2.0 * PI * k as f64 / m as f64;
            [22.0 * phi.cos(), 16.0 * phi.sin(), z]
        })
        .collect();
    Endplate {
        centre: [0.0, 0.0, z],
        normal: [0.0, 0.0, s],
        outline,
        area_mm2: PI * 22.0 * 16.0,
    }
}

fn facet(c: P3, n: P3) -> ArticularSurface {
    // A 6 mm disc of points in the plane normal to x (the facet faces left or right).
    let mut points = Vec::new();
    for r in [2.0, 4.0, 6.0] {
        for k in 0..24 {
            let a = 2.0 * PI * k as f64 / 24.0;
            points.push([c[0], c[1] + r * a.cos(), c[2] + r * a.sin()]);
        }
    }
    let normals = vec![n; points.len()];
    ArticularSurface {
        centre: c,
        normal: n,
        points,
        normals,
        area_mm2: PI * 36.0,
    }
}

/// A twin file of two vertebrae with these parameters.
fn twin_file(
    params: spinetwin_model::twin::TwinParams,
    vertebrae: Vec<VertebraLandmarks>,
) -> spinetwin_model::twin::TwinFile {
    spinetwin_model::twin::TwinFile {
        schema_version: spinetwin_model::twin::TWIN_SCHEMA_VERSION,
        fidelity: spinetwin_model::twin::Fidelity::Hybrid,
        source: "test".into(),
        pseudonym: String::new(),
        params,
        landmarks: spinetwin_segment::landmarks::SpineLandmarks {
            vertebrae,
            discs: vec![],
            warnings: vec![],
        },
    }
}

/// A schematic vertebra with its body centre at height `z0`.
fn vertebra(level: Level, z0: f64) -> VertebraLandmarks {
    let p = |x: f64, y: f64, z: f64| [x, y, z0 + z];
    VertebraLandmarks {
        level,
        label: 23,
        frame: Frame {
            origin: p(0.0, 0.0, 0.0),
            x: [1.0, 0.0, 0.0],
            y: [0.0, 1.0, 0.0],
            z: [0.0, 0.0, 1.0],
        },
        centroid: p(0.0, 10.0, 0.0),
        volume_mm3: 40000.0,
        superior_endplate: endplate(z0 + 13.0, true),
        inferior_endplate: Some(endplate(z0 - 13.0, false)),
        pedicles: None,
        superior_facets: Sides {
            left: Some(facet(p(13.0, 32.0, 12.0), [-1.0, 0.0, 0.0])),
            right: Some(facet(p(-13.0, 32.0, 12.0), [1.0, 0.0, 0.0])),
        },
        inferior_facets: Sides {
            left: Some(facet(p(12.0, 32.0, -14.0), [1.0, 0.0, 0.0])),
            right: Some(facet(p(-12.0, 32.0, -14.0), [-1.0, 0.0, 0.0])),
        },
        inferior_stops: Default::default(),
        spinous_tip: Some(p(0.0, 60.0, -12.0)),
        spinous_base: Some(p(0.0, 35.0, -4.0)),
        transverse_tips: Sides {
            left: Some(p(38.0, 18.0, 0.0)),
            right: Some(p(-38.0, 18.0, 0.0)),
        },
        lamina_superior: Some(p(0.0, 30.0, 8.0)),
        lamina_inferior: Some(p(0.0, 33.0, -12.0)),
        trabecular_hu: 200.0,
        canal: None,
        confidence: 1.0,
        warnings: vec![],
    }
}

#[test]
fn goel_force_matches_table() {
    // ALL: E_low 7.8 MPa to 0.12, E_high 20 MPa, A 63.7 mm^2 (Goel set).
    let law = ligament_law(Ligament::All, LigamentSet::GoelBilinear);
    let f = law_force(&law, 0.2);
    let exact = 7.8 * 63.7 * 0.12 + 20.0 * 63.7 * 0.08;
    assert!((f - exact).abs() < 1e-9, "{f} vs {exact}");
    assert!((law_force(&law, 0.05) - 7.8 * 63.7 * 0.05).abs() < 1e-9);
    // LF: 15 MPa to 0.062, 19.5 beyond, 40 mm^2.
    let lf = ligament_law(Ligament::Lf, LigamentSet::GoelBilinear);
    let exact = 15.0 * 40.0 * 0.062 + 19.5 * 40.0 * (0.1 - 0.062);
    assert!((law_force(&lf, 0.1) - exact).abs() < 1e-9);
}

#[test]
fn remus_force_matches_table() {
    // ALL: transition 0.08, 485 N per unit strain; quadratic toe, slope continuous.
    let law = ligament_law(Ligament::All, LigamentSet::Remus2021);
    assert_eq!(
        law,
        SpringLaw::ToeLinear {
            k: 485.0,
            eps_t: 0.08
        }
    );
    assert!((law_force(&law, 0.15) - 485.0 * (0.15 - 0.04)).abs() < 1e-9);
    assert!((law_force(&law, 0.04) - 485.0 * 0.04 * 0.04 / 0.16).abs() < 1e-12);
    // Slope at the transition equals the linear stiffness (finite difference).
    let h = 1e-6;
    let slope = (law_force(&law, 0.08 + h) - law_force(&law, 0.08 - h)) / (2.0 * h);
    assert!((slope - 485.0).abs() < 1e-2, "{slope}");
    // CL rest length: geometric x (1 + 0.55); with a 10 % global pre-strain / 1.1.
    let f = fibre_law(LigamentSet::Remus2021, Ligament::Cl, 4, 10.0, 0.0).unwrap();
    assert!((f.1 - 15.5).abs() < 1e-12);
    let f = fibre_law(LigamentSet::Remus2021, Ligament::Cl, 4, 10.0, 0.1).unwrap();
    assert!((f.1 - 15.5 / 1.1).abs() < 1e-12);
    // ALL is pre-tensioned (reference strain -0.03): it pulls at its imaged length.
    let f = fibre_law(LigamentSet::Remus2021, Ligament::All, 1, 20.0, 0.0).unwrap();
    let eps = 20.0 / f.1 - 1.0;
    assert!((eps - (1.0 / 0.97 - 1.0)).abs() < 1e-12 && law_force(&f.0, eps) > 0.0);
    let g = fibre_law(LigamentSet::GoelBilinear, Ligament::All, 1, 20.0, 0.0).unwrap();
    assert_eq!(g.1, 20.0);
}

#[test]
fn tension_only() {
    for lig in Ligament::ALL {
        for set in [LigamentSet::GoelBilinear, LigamentSet::Remus2021] {
            let law = ligament_law(lig, set);
            for eps in [-0.5, -0.1, -1e-9, 0.0] {
                assert_eq!(law_force(&law, eps), 0.0, "{lig:?} {set:?} at {eps}");
            }
            assert!(law_force(&law, 0.05) > 0.0);
        }
    }
}

#[test]
fn fibre_stiffness_sums_to_ligament() {
    for lig in Ligament::ALL {
        for set in [LigamentSet::GoelBilinear, LigamentSet::Remus2021] {
            let whole = ligament_law(lig, set);
            for n in [1, 3, 8] {
                let f = fibre_law(set, lig, n, 25.0, 0.0).unwrap();
                for eps in [0.01, 0.07, 0.15, 0.3, 1.2] {
                    let sum = n as f64 * law_force(&f.0, eps);
                    let w = law_force(&whole, eps);
                    assert!((sum - w).abs() < 1e-9 * w.max(1.0), "{lig:?} {set:?} n={n}");
                }
            }
        }
    }
    assert!(fibre_law(LigamentSet::Remus2021, Ligament::All, 0, 10.0, 0.0).is_err());
    assert!(fibre_law(LigamentSet::Remus2021, Ligament::All, 2, 0.0, 0.0).is_err());
    assert!(fibre_law(LigamentSet::Remus2021, Ligament::All, 2, 5.0, f64::NAN).is_err());
}

#[test]
fn attachments_on_the_expected_side() {
    let up = vertebra(Level::L4, 40.0);
    let lo = vertebra(Level::L5, 0.0);
    let y = |p: P3| p[1] - up.frame.origin[1];
    let n = 5;
    let all = attachment_pairs(&up, &lo, Ligament::All, n);
    assert_eq!(all.len(), n);
    for (a, b) in &all {
        assert!(
            y(*a) < -5.0 && y(*b) < -5.0,
            "ALL not anterior: {a:?} {b:?}"
        );
        assert!(
            (a[2] - 27.0).abs() < 1e-9 && (b[2] - 13.0).abs() < 1e-9,
            "ALL off the rims"
        );
    }
    // Spread across the width, symmetric, the middle fibre at the anterior midline.
    assert!(all[0].0[0] * all[n - 1].0[0] < 0.0);
    assert!(all[2].0[0].abs() < 1e-9 && (all[2].0[1] + 16.0).abs() < 1e-9);
    let pll = attachment_pairs(&up, &lo, Ligament::Pll, 3);
    for (a, b) in &pll {
        assert!(y(*a) > 5.0 && y(*b) > 5.0, "PLL not posterior");
    }
    let lf = attachment_pairs(&up, &lo, Ligament::Lf, 3);
    for (a, b) in &lf {
        assert!(y(*a) > 20.0 && a[2] > b[2]);
    }
    for (lig, min_y) in [(Ligament::Isl, 30.0), (Ligament::Ssl, 55.0)] {
        for (a, b) in attachment_pairs(&up, &lo, lig, 4) {
            assert!(y(a) >= min_y && y(b) >= min_y, "{lig:?} too anterior");
        }
    }
    let itl = attachment_pairs(&up, &lo, Ligament::Itl, 2);
    assert_eq!(itl.len(), 4);
    assert!(
        itl[..2].iter().all(|(a, b)| a[0] > 30.0 && b[0] > 30.0),
        "left first"
    );
    assert!(itl[2..].iter().all(|(a, b)| a[0] < -30.0 && b[0] < -30.0));
    let cl = attachment_pairs(&up, &lo, Ligament::Cl, 8);
    assert_eq!(cl.len(), 16);
    for (i, (a, b)) in cl.iter().enumerate() {
        let side = if i < 8 { 1.0 } else { -1.0 };
        assert!(a[0] * side > 10.0 && b[0] * side > 10.0);
        // On the rims (6 mm from the facet centres) of the upper's inferior and the lower's
        // superior facet.
        let da = ((a[1] - 32.0).powi(2) + (a[2] - 26.0).powi(2)).sqrt();
        let db = ((b[1] - 32.0).powi(2) + (b[2] - 12.0).powi(2)).sqrt();
        assert!(
            (da - 6.0).abs() < 1e-9 && (db - 6.0).abs() < 1e-9,
            "{da} {db}"
        );
    }
}

#[test]
fn missing_landmarks_are_errors() {
    let up = vertebra(Level::L5, 40.0);
    let mut lo = vertebra(Level::S1, 0.0);
    lo.transverse_tips = Sides {
        left: None,
        right: None,
    };
    lo.spinous_tip = None;
    assert!(attachment_pairs(&up, &lo, Ligament::Itl, 2).is_empty());
    assert!(attachment_pairs(&up, &lo, Ligament::Ssl, 2).is_empty());
    lo.transverse_tips.right = Some([-38.0, 18.0, 0.0]);
    assert_eq!(attachment_pairs(&up, &lo, Ligament::Itl, 2).len(), 2);
    let mut up2 = up.clone();
    up2.inferior_endplate = None;
    assert!(attachment_pairs(&up2, &lo, Ligament::All, 3).is_empty());
    assert!(attachment_pairs(&up, &lo, Ligament::All, 0).is_empty());
    assert_eq!(attachment_pairs(&up, &lo, Ligament::All, 3).len(), 3);
}

#[test]
fn sleeve_capsule_crosses_the_posterior_half_of_the_joint() {
    // Schematic pair: the upper's inferior facets face laterally (x = +-12), the lower's
    // superior facets medially (x = +-13), both 6 mm discs centred at y = 32.
    let up = vertebra(Level::L5, 40.0);
    let lo = vertebra(Level::S1, 0.0);
    let sleeve = CapsuleModel::Sleeve {
        insertion_mm: 3.0,
        recess_mm: 5.0,
    };
    let cl = attachment_pairs_with(&up, &lo, Ligament::Cl, 3, sleeve);
    assert_eq!(cl.len(), 6, "three per side");
    let (left, right) = cl.split_at(3);
    for ((la, lb), (ra, rb)) in left.iter().zip(right) {
        // Left and right are mirror images (the directions come from the vertebra's frame).
        for k in 0..3 {
            let m = if k == 0 { -1.0 } else { 1.0 };
            assert!((la[k] - m * ra[k]).abs() < 1e-9 && (lb[k] - m * rb[k]).abs() < 1e-9);
        }
        // Inserted 3 mm back from each articular surface onto its own process: across the
        // joint (12 -> 13 mm) plus 3 mm on either side.
        assert!((la[0] - 9.0).abs() < 1e-9 && (lb[0] - 16.0).abs() < 1e-9);
        // Only the posterior half of the margin (anteriorly the joint is ligamentum flavum).
        assert!(
            la[1] >= 32.0 - 1e-9 && lb[1] >= 32.0 - 1e-9,
            "{la:?} {lb:?}"
        );
    }
    // Superior pole, posterior margin, inferior pole, in that order.
    let z = |p: &P3| p[2];
    assert!((z(&left[0].0) - 32.0).abs() < 1e-9 && (z(&left[0].1) - 18.0).abs() < 1e-9);
    assert!((left[1].0[1] - 38.0).abs() < 1e-9 && (left[1].1[1] - 38.0).abs() < 1e-9);
    // The inferior fibre's lower end sits 5 mm below the lower surface's inferior rim
    // (12 - 6 mm): the long oblique fibres over the inferior recess.
    assert!((z(&left[2].0) - 20.0).abs() < 1e-9 && (z(&left[2].1) - 1.0).abs() < 1e-9);
    let len = |(a, b): &(P3, P3)| {
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
    };
    assert!(len(&left[2]) > len(&left[0]));
    // The default is still the rim model.
    assert_eq!(
        attachment_pairs(&up, &lo, Ligament::Cl, 3),
        attachment_pairs_with(&up, &lo, Ligament::Cl, 3, CapsuleModel::Rim)
    );
    // Out-of-range distances leave the capsule out rather than placing it anywhere.
    for bad in [-1.0, f64::NAN, 25.0] {
        let s = CapsuleModel::Sleeve {
            insertion_mm: bad,
            recess_mm: 5.0,
        };
        assert!(attachment_pairs_with(&up, &lo, Ligament::Cl, 3, s).is_empty());
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("insertion_mm"), "{e}");
    }
    assert!(CapsuleModel::SLEEVE_DEFAULT.check().is_ok());
    // A joint facing backwards (coronal) has no posterior margin to lay the sleeve on: that
    // joint's capsule is left out, the other joint keeps its own.
    let mut up2 = up.clone();
    let mut lo2 = lo.clone();
    up2.inferior_facets.right = Some(facet([-12.0, 32.0, 26.0], [0.0, -1.0, 0.0]));
    lo2.superior_facets.right = Some(facet([-13.0, 32.0, 12.0], [0.0, 1.0, 0.0]));
    let cl2 = attachment_pairs_with(&up2, &lo2, Ligament::Cl, 3, sleeve);
    assert_eq!(cl2, cl[..3].to_vec(), "left kept, right left out");
    // The rim model does not need the orientation.
    assert_eq!(attachment_pairs(&up2, &lo2, Ligament::Cl, 3).len(), 6);
}

#[test]
fn twin_files_without_a_capsule_model_get_the_rim() {
    let old = r#"{"set":"GoelBilinear","fibres":3,"prestrain":0.0}"#;
    let p: spinetwin_model::twin::LigamentParams = serde_json::from_str(old).unwrap();
    assert_eq!(p.capsule, CapsuleModel::Rim);
    let new = r#"{"set":"GoelBilinear","fibres":3,"prestrain":0.0,
        "capsule":{"sleeve":{"insertion_mm":3.0,"recess_mm":5.0}}}"#;
    let p: spinetwin_model::twin::LigamentParams = serde_json::from_str(new).unwrap();
    assert_eq!(p.capsule, CapsuleModel::SLEEVE_DEFAULT);
}

#[test]
fn a_twin_says_why_a_capsule_is_left_out_and_refuses_bad_sleeve_distances() {
    use spinetwin_model::twin::{Twin, TwinParams};
    let up = vertebra(Level::L5, 40.0);
    let mut lo = vertebra(Level::S1, 0.0);
    // The right joint faces backwards: no posterior margin for the sleeve.
    lo.superior_facets.right = Some(facet([-13.0, 32.0, 12.0], [0.0, 1.0, 0.0]));
    let file = |capsule| {
        let mut params = TwinParams::default();
        params.ligaments.capsule = capsule;
        params.without_facets = true;
        let mut up = up.clone();
        up.inferior_facets.right = Some(facet([-12.0, 32.0, 26.0], [0.0, -1.0, 0.0]));
        twin_file(params, vec![up, lo.clone()])
    };
    let twin = Twin::build(file(CapsuleModel::SLEEVE_DEFAULT)).unwrap();
    let cl = twin
        .fibres
        .iter()
        .filter(|f| f.ligament == Ligament::Cl)
        .count();
    assert_eq!(cl, 3, "the left capsule is kept");
    // Both joints unusable: the twin's warnings give the reason, not a missing landmark.
    let mut f = file(CapsuleModel::SLEEVE_DEFAULT);
    f.landmarks.vertebrae[0].inferior_facets.left =
        Some(facet([12.0, 32.0, 26.0], [0.0, -1.0, 0.0]));
    f.landmarks.vertebrae[1].superior_facets.left =
        Some(facet([13.0, 32.0, 12.0], [0.0, 1.0, 0.0]));
    let twin = Twin::build(f).unwrap();
    assert!(twin.fibres.iter().all(|f| f.ligament != Ligament::Cl));
    assert!(
        twin.warnings
            .iter()
            .any(|w| w.contains("CL left out") && w.contains("does not face sideways")),
        "{:?}",
        twin.warnings
    );
    // A bad distance in the twin file stops the build, naming the parameter.
    let e = Twin::build(file(CapsuleModel::Sleeve {
        insertion_mm: 30.0,
        recess_mm: 5.0,
    }))
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("insertion_mm"), "{e}");
}

/// A flat patch of points facing up (`+1`) or down (`-1`) along z: a process tip or the
/// lamina under it.
fn plate(c: P3, up: f64) -> ArticularSurface {
    let mut points = Vec::new();
    for r in [1.0, 2.0, 3.0] {
        for k in 0..12 {
            let a = 2.0 * PI * k as f64 / 12.0;
            points.push([c[0] + r * a.cos(), c[1] + r * a.sin(), c[2]]);
        }
    }
    let n = [0.0, 0.0, up];
    ArticularSurface {
        centre: c,
        normal: n,
        normals: vec![n; points.len()],
        points,
        area_mm2: PI * 9.0,
    }
}

#[test]
fn bony_stops_become_contacts_only_when_asked_for() {
    use spinetwin_model::twin::{PosteriorContact, Twin, TwinParams};
    use spinetwin_segment::landmarks::BonyStop;
    let mut up = vertebra(Level::L5, 40.0);
    // The left inferior process tip 1.2 mm above the lamina of the vertebra below.
    up.inferior_stops.left = Some(BonyStop {
        upper: plate([14.0, 38.0, 14.2], -1.0),
        lower: plate([14.0, 38.0, 13.0], 1.0),
    });
    let file = |bony_stops| {
        let params = TwinParams {
            bony_stops,
            ..Default::default()
        };
        twin_file(params, vec![up.clone(), vertebra(Level::S1, 0.0)])
    };
    let kinds = |t: &Twin| {
        t.facets
            .iter()
            .map(|f| (f.kind, f.side))
            .collect::<Vec<_>>()
    };
    let off = Twin::build(file(false)).unwrap();
    assert_eq!(
        kinds(&off),
        vec![
            (PosteriorContact::Articular, 0),
            (PosteriorContact::Articular, 1)
        ]
    );
    let on = Twin::build(file(true)).unwrap();
    assert_eq!(kinds(&on)[2..], [(PosteriorContact::BonyStop, 0)]);
    // The disc-only specimen loses the posterior elements, stops with them.
    let mut no_posterior = file(true);
    no_posterior.params.without_facets = true;
    assert!(Twin::build(no_posterior).unwrap().facets.is_empty());
    let stop = &on.facets[2].geometry;
    // Bone on bone: contact starts when the 1.2 mm gap has closed, not 0.1 mm before.
    assert!(
        (stop.joint_space_mm - 1.2).abs() < 1e-9,
        "{}",
        stop.joint_space_mm
    );
    assert_eq!(stop.clearance_mm, 0.0);
    assert_eq!(stop.dropped_points, 0);
    // In the FE model the stop reaches into the arch (a small patch on a soft penalty must
    // not be pushed behind its master); the articular joints keep the engine's default.
    let case = spinetwin_model::loadcase::LoadCase::parse("extension:7.5Nm").unwrap();
    let (model, _) = on.fem_model(&case).unwrap();
    let depths: Vec<Option<f64>> = model.contacts.iter().map(|c| c.search_depth).collect();
    assert_eq!(
        depths,
        [
            None,
            None,
            Some(spinetwin_model::facet::STOP_SEARCH_DEPTH_MM)
        ]
    );
    // Landmarks and results written before the stops existed read none.
    let mut json = serde_json::to_value(vertebra(Level::L5, 40.0)).unwrap();
    json.as_object_mut().unwrap().remove("inferior_stops");
    let old: spinetwin_segment::landmarks::VertebraLandmarks =
        serde_json::from_value(json).unwrap();
    assert!(old.inferior_stops.left.is_none() && old.inferior_stops.right.is_none());
    let seg = spinetwin_model::twin::SegmentResult {
        upper: Level::L5,
        lower: Level::S1,
        rotation_deg: [1.0, 0.0, 0.0],
        idp_mpa: 0.3,
        facet_force_n: [Some(10.0), None],
        stop_force_n: [Some(5.0), None],
        facet_pressure_max_mpa: [Some(1.5), None],
        disc_height_change_mm: 0.0,
        annulus_fibre_strain_max: 0.0,
    };
    let mut json = serde_json::to_value(&seg).unwrap();
    json.as_object_mut().unwrap().remove("stop_force_n");
    json.as_object_mut()
        .unwrap()
        .remove("facet_pressure_max_mpa");
    let old: spinetwin_model::twin::SegmentResult = serde_json::from_value(json).unwrap();
    assert_eq!(old.stop_force_n, [None, None]);
    assert_eq!(old.facet_pressure_max_mpa, [None, None]);
    // Twin files written before the option read it as off.
    let mut json = serde_json::to_value(TwinParams::default()).unwrap();
    json.as_object_mut().unwrap().remove("bony_stops");
    let p: TwinParams = serde_json::from_value(json).unwrap();
    assert!(!p.bony_stops);
}
