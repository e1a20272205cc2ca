//! The facet joints' contact pressure field of a solved case: the default phantom's intact
//! L4-L5 under 7.5 N m left axial rotation, where the contralateral (right) facet joint is
//! pressed (Jaumard et al. 2011 J Biomech Eng 133:071010). The exported field must be the
//! one that makes each joint's force (pressure times tributary area, summed per side), its
//! peak must be the reported peak, and its surfaces must move with the upper vertebra.
//!
//! `cargo test --release -p spinetwin-model --test facet_pressure -- --ignored --nocapture`

mod common;

use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::export::loaded_contact_surfaces;
use spinetwin_model::loadcase::LoadCase;
use spinetwin_model::twin::{PosteriorContact, TwinParams};
use spinetwin_model::validate::specimen;

#[test]
#[ignore = "a phantom, its segmentation and a nonlinear solve: release mode (CI runs it)"]
fn the_facet_pressure_field_makes_the_facet_forces() {
    let file = common::phantom_twin_file(
        &Default::default(),
        "default phantom",
        TwinParams::default(),
    );
    let twin = specimen(&file, "intact_segment_l4l5").expect("L4-L5 specimen");
    let case = LoadCase::parse("axial_rotation_left:7.5Nm").expect("load case");
    let res = twin
        .simulate(&case, &SolveOptions::default())
        .expect("solve");
    assert!(res.converged, "{:?}", res.failure);
    let seg = &res.last().expect("a sample").segments[0];
    let d = res.deformed.as_ref().expect("the deformed twin");
    assert_eq!(d.facet_pressure.len(), twin.facets.len());

    // Per side: pressure times area summed over the joint's points is its force, and the
    // largest pressure is the reported peak.
    let mut force = [0.0f64; 2];
    let mut peak = [0.0f64; 2];
    for (f, p) in twin.facets.iter().zip(&d.facet_pressure) {
        assert_eq!(p.len(), f.geometry.slave.len());
        if f.kind != PosteriorContact::Articular {
            continue;
        }
        force[f.side] += p
            .iter()
            .zip(&f.geometry.slave_area)
            .map(|(p, a)| p * a)
            .sum::<f64>();
        peak[f.side] = p.iter().copied().fold(peak[f.side], f64::max);
    }
    println!(
        "L4-L5, 7.5 N m left axial rotation: {:.2} deg; facet force left {:.1} N, right {:.1} N; \
         peak contact pressure left {:.2} MPa, right {:.2} MPa",
        seg.rotation_deg[2], force[0], force[1], peak[0], peak[1]
    );
    for side in 0..2 {
        let reported = seg.facet_force_n[side].expect("both joints modelled");
        assert!(
            (force[side] - reported).abs() <= 1e-6 * reported.max(1.0),
            "side {side}: field {:.4} N, reported {reported:.4} N",
            force[side]
        );
        assert_eq!(Some(peak[side]), seg.facet_pressure_max_mpa[side]);
    }
    // Left rotation presses the right (contralateral) joint.
    assert!(
        force[1] > 10.0 && force[1] > 2.0 * force[0],
        "left {:.1} N, right {:.1} N",
        force[0],
        force[1]
    );

    // The surfaces for ParaView: every point, its pressure, triangles on each joint, and
    // the points where the upper vertebra carried them.
    let c = loaded_contact_surfaces(&twin, d).expect("contact surfaces");
    let n: usize = twin.facets.iter().map(|f| f.geometry.slave.len()).sum();
    assert_eq!(c.points.len(), n);
    assert_eq!(c.point_fields[0].0, "contact_pressure");
    assert_eq!(c.point_fields[0].1.len(), n);
    assert!(c.triangles.len() >= twin.facets.len());
    let sides: Vec<f64> = c
        .cell_fields
        .iter()
        .find(|f| f.0 == "side")
        .unwrap()
        .1
        .clone();
    assert!(sides.contains(&0.0) && sides.contains(&1.0));
    let f0 = &twin.facets[0];
    let moved = (0..3)
        .map(|k| c.points[0][k] - f0.geometry.slave[0][k])
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt();
    let expected = d.body_point(&twin, f0.upper, f0.geometry.slave[0]);
    assert!(moved > 0.05, "the joint's points did not move ({moved} mm)");
    assert_eq!(c.points[0], expected);
}
