//! An interbody cage on the day of the operation: a rigid body in frictional contact with
//! both endplates (`interface = "contact"`, the default), against the bonded cage of the
//! fused state (`interface = "bonded"`, and any cage under `bony_fusion`).

mod common;

use common::cage_force;

use spinetwin_fem::nl::{SolveOptions, SpringLaw};
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{BlockInterface, CaseResult, Twin, BLOCK_HOLD_N_PER_MM};
use spinetwin_scenario::{apply, Scenario, CAGE_FRICTION, CAGE_SEATING_MM};

fn scen(ops: &str) -> Scenario {
    Scenario::parse(&format!("name = \"test\"\n{ops}"), "test.toml").unwrap()
}

const ALIF: &str =
    "[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"alif\"\n";

#[test]
fn a_cage_is_in_contact_by_default_and_bonded_when_asked_or_fused() {
    let twin = common::specimen(&["L3", "L4", "L5"]);
    let m = apply(&twin, &scen(ALIF)).unwrap();
    let b = &m.twin.implants.disc_blocks[0];
    assert_eq!(
        b.interface,
        BlockInterface::Contact {
            friction: CAGE_FRICTION,
            seating_mm: CAGE_SEATING_MM,
            distraction_mm: 0.0,
        }
    );
    // The FE model: one contact pair per endplate, with the cage's friction and seating,
    // and the six bars that hold it to L5.
    let (model, index) = m
        .twin
        .fem_model(&LoadCase::pure_moment(Motion::Extension, 7.5, 0.0))
        .unwrap();
    assert_eq!(index.block_contacts.len(), 2);
    // The cage's own nodes (those no annulus element shares) for its picture.
    assert_eq!(index.block_nodes.len(), 1);
    assert!(index.block_nodes[0].1.len() >= 10);
    for bc in &index.block_contacts {
        let c = &model.contacts[bc.pair];
        assert_eq!(c.friction, CAGE_FRICTION);
        // The cage sticks with a tenth of its normal penalty (the TLIF's Newton speed).
        assert_eq!(
            c.tangential_penalty,
            Some(spinetwin_model::twin::BLOCK_TANGENTIAL_PENALTY_RATIO * c.penalty)
        );
        assert_eq!(c.clearance, CAGE_SEATING_MM);
        assert_eq!(bc.nodes.len(), c.slave.len());
        assert!(c.slave.len() >= 10, "{}: {} points", c.name, c.slave.len());
    }
    let holds: Vec<_> = model
        .springs
        .iter()
        .filter(|s| s.name.ends_with(" hold"))
        .collect();
    assert_eq!(holds.len(), 6);
    for s in holds {
        assert!(matches!(s.law, SpringLaw::Truss { k } if k == BLOCK_HOLD_N_PER_MM * 10.0));
    }
    // Bonded on request, and friction is refused there.
    let bonded = apply(&twin, &scen(&format!("{ALIF}interface = \"bonded\"\n"))).unwrap();
    assert_eq!(
        bonded.twin.implants.disc_blocks[0].interface,
        BlockInterface::Bonded
    );
    let (model, index) = bonded
        .twin
        .fem_model(&LoadCase::pure_moment(Motion::Extension, 7.5, 0.0))
        .unwrap();
    assert!(index.block_contacts.is_empty());
    assert!(!model.springs.iter().any(|s| s.name.ends_with(" hold")));
    let e = apply(
        &twin,
        &scen(&format!("{ALIF}interface = \"bonded\"\nfriction = 0.3\n")),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("friction applies to a cage in contact"), "{e}");
    // So is a distraction, and one beyond a few millimetres is refused everywhere.
    let e = apply(
        &twin,
        &scen(&format!(
            "{ALIF}interface = \"bonded\"\ndistraction_mm = 1.0\n"
        )),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("distraction_mm applies to a cage in contact"),
        "{e}"
    );
    for d in ["-0.5", "6.0"] {
        let e = apply(&twin, &scen(&format!("{ALIF}distraction_mm = {d}\n")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("distraction_mm") && e.contains("outside"), "{e}");
    }
    // A fusion grows onto the cage: bonded from then on.
    let fused = apply(
        &twin,
        &scen(&format!(
            "{ALIF}[[operation]]\nkind = \"bony_fusion\"\nsegment = \"L4-L5\"\n"
        )),
    )
    .unwrap();
    assert!(fused
        .twin
        .implants
        .disc_blocks
        .iter()
        .all(|b| b.interface == BlockInterface::Bonded));
}

/// L4-L5 rotation about the case's axis (deg, positive in the loaded direction).
fn l4l5(r: &CaseResult) -> f64 {
    assert!(r.converged, "{}: {:?}", r.case.name, r.failure);
    let (m, _) = r.case.moment.unwrap();
    let (a, s) = m.axis_sign();
    let seg = r.last().unwrap();
    let g = seg
        .segments
        .iter()
        .find(|g| g.upper.name() == "L4")
        .unwrap();
    g.rotation_deg[a] * s
}

/// An ALIF cage alone in contact on the L3-L5 phantom specimen, 7.5 N m: it converges in
/// extension, where the segment opens anteriorly (the approach cut the anterior annulus and
/// the ALL) and lifts off the cage, and in flexion, where it compresses the cage. The cage
/// reduces the flexion ROM and hardly the extension ROM (stand-alone anterior cages
/// stabilise flexion but not extension). Four solves: run in release with
/// `-- --ignored --nocapture`.
#[test]
#[ignore = "four nonlinear solves of an L3-L5 twin (10 s in release, a minute more when the phantom is not cached); run with --ignored"]
fn alif_cage_in_contact_lifts_off_in_extension() {
    let twin: Twin = common::specimen(&["L3", "L4", "L5"]);
    let alif = apply(&twin, &scen(ALIF)).unwrap();
    let solve = |t: &Twin, m: Motion| {
        t.simulate(
            &LoadCase::pure_moment(m, 7.5, 0.0),
            &SolveOptions::default(),
        )
        .unwrap()
    };
    let (i_f, i_e) = (
        solve(&twin, Motion::Flexion),
        solve(&twin, Motion::Extension),
    );
    let (c_f, c_e) = (
        solve(&alif.twin, Motion::Flexion),
        solve(&alif.twin, Motion::Extension),
    );
    let change = |a: &CaseResult, b: &CaseResult| 100.0 * (l4l5(b) / l4l5(a) - 1.0);
    let (df, de) = (change(&i_f, &c_f), change(&i_e, &c_e));
    let l4 = twin.levels.iter().position(|l| l.name() == "L4").unwrap();
    let (ff, fe) = (cage_force(&c_f, l4).norm(), cage_force(&c_e, l4).norm());
    println!(
        "ALIF in contact, L4-L5: flexion {:.2} -> {:.2} deg ({df:+.1} %, {} it), extension {:.2} -> {:.2} deg ({de:+.1} %, {} it); cage force on L4 {ff:.1} N in flexion, {fe:.1} N in extension",
        l4l5(&i_f),
        l4l5(&c_f),
        c_f.iterations,
        l4l5(&i_e),
        l4l5(&c_e),
        c_e.iterations
    );
    assert!(df < -20.0, "flexion {df:+.1} %");
    assert!(
        de > -10.0 && de > df + 30.0,
        "extension {de:+.1} %, flexion {df:+.1} %"
    );
    // Lift-off: the upper endplate leaves the cage in extension.
    assert!(ff > 20.0, "flexion: cage force on L4 {ff:.1} N");
    assert!(fe < 0.05 * ff, "extension: cage force on L4 {fe:.1} N");
}

/// A cage `distraction_mm` taller than the disc space is driven in by a load-free first
/// step that ramps each endplate's interference to half the distraction; the load cases
/// follow it and their rotations are measured from the pose it leaves.
#[test]
fn a_distracting_cage_is_seated_by_a_load_free_first_step() {
    let twin = common::specimen(&["L3", "L4", "L5"]);
    let case = LoadCase::pure_moment(Motion::Flexion, 7.5, 280.0);
    for (d, seated) in [(0.0, None), (0.02, None), (2.0, Some(1.0))] {
        let m = apply(&twin, &scen(&format!("{ALIF}distraction_mm = {d}\n"))).unwrap();
        assert_eq!(
            m.twin.implants.disc_blocks[0].interface,
            BlockInterface::Contact {
                friction: CAGE_FRICTION,
                seating_mm: CAGE_SEATING_MM,
                distraction_mm: d,
            }
        );
        let (model, index) = m.twin.fem_model(&case).unwrap();
        let pairs: Vec<usize> = index.block_contacts.iter().map(|b| b.pair).collect();
        for &p in &pairs {
            assert_eq!(model.contacts[p].clearance, CAGE_SEATING_MM);
        }
        let names: Vec<&str> = model.steps.iter().map(|s| s.name.as_str()).collect();
        match seated {
            None => {
                assert_eq!(index.seated_step, None);
                assert_eq!(names, ["follower", "moment"]);
            }
            Some(c) => {
                assert_eq!(index.seated_step, Some(0));
                assert_eq!(names, ["seat implants", "follower", "moment"]);
                let seat = &model.steps[0];
                assert!(seat.loads.is_empty());
                assert_eq!(
                    seat.clearances,
                    pairs.iter().map(|&p| (p, c)).collect::<Vec<_>>()
                );
                // Every sample is read after the seat step.
                assert!(index.sample_steps.iter().all(|s| s.0 >= 1));
                // Its pose is held like the others (the bottom vertebra fixed).
                assert_eq!(seat.prescribed, model.steps[2].prescribed);
            }
        }
    }
    // A distraction set through the model's API is checked there too, by name.
    let mut m = apply(&twin, &scen(ALIF)).unwrap();
    for bad in [-1.0, f64::NAN] {
        m.twin.implants.disc_blocks[0].interface = BlockInterface::Contact {
            friction: CAGE_FRICTION,
            seating_mm: CAGE_SEATING_MM,
            distraction_mm: bad,
        };
        let e = m.twin.fem_model(&case).unwrap_err().to_string();
        assert!(e.contains("cage L4-L5") && e.contains("distraction"), "{e}");
    }
}

/// An ALIF cage impacted `distraction_mm` taller than the disc space pushes L4 off L5 and
/// tensions what the approach left (posterior annulus, PLL, the posterior ligaments and
/// capsules): the disc space opens, the cage is pressed harder and the segment's axial
/// rotation from the distracted pose falls as the distraction grows (0, 1 and 2 mm against
/// the 0.02 mm of a seated cage). Four solves of the L3-L5 specimen: run in release with
/// `-- --ignored --nocapture`.
#[test]
#[ignore = "four nonlinear solves of an L3-L5 twin (release: about 20 s); run with --ignored"]
fn alif_distraction_tensions_the_segment_and_reduces_axial_rotation() {
    let twin: Twin = common::specimen(&["L3", "L4", "L5"]);
    let case = LoadCase::pure_moment(Motion::AxialRotationLeft, 7.5, 0.0);
    let intact = twin.simulate(&case, &SolveOptions::default()).unwrap();
    let l4 = twin.levels.iter().position(|l| l.name() == "L4").unwrap();
    let mut rows = vec![];
    for d in [0.0f64, 1.0, 2.0] {
        let s = scen(&format!("{ALIF}distraction_mm = {d}\n"));
        let m = apply(&twin, &s).unwrap();
        let r = m.twin.simulate(&case, &SolveOptions::default()).unwrap();
        assert!(r.converged, "{d} mm: {:?}", r.failure);
        if d > 0.0 {
            // The seat step alone: the teeth (hold bars) are unstressed at the seated pose,
            // so the cage is pressed onto L5 by what presses it from L4, not by its bars
            // (bars unstressed in the reference pose would each pull it back with about
            // 1000 N per mm lifted). What they still carry holds the cage in the disc's
            // wedge (L4's endplate pushes it along L5's by the wedge angle): measured 41 N
            // at 1 mm against 272 N on L5.
            let (mut model, index) = m.twin.fem_model(&case).unwrap();
            model.steps.truncate(1);
            let seat = spinetwin_fem::nl::solve(&model, &SolveOptions::default()).unwrap();
            assert!(seat.converged, "{:?}", seat.failure);
            let st = seat.steps[0].state.as_ref().unwrap();
            let holds = model
                .springs
                .iter()
                .zip(&st.spring_forces)
                .filter(|(s, _)| s.name.ends_with(" hold"))
                .map(|(_, f)| f.abs())
                .fold(0.0, f64::max);
            let lower = index
                .block_contacts
                .iter()
                .find(|b| !b.upper)
                .map(|b| st.contacts[b.pair].normal_force)
                .unwrap();
            println!(
                "  seated {d} mm: largest hold bar force {holds:.1} N, cage on L5 {lower:.1} N"
            );
            assert!(holds < 0.25 * lower, "{holds} N in a bar, {lower} N on L5");
        }
        let change = 100.0 * (l4l5(&r) / l4l5(&intact) - 1.0);
        let force = cage_force(&r, l4).norm();
        // The distraction itself, from the pre-operative geometry.
        let (opened, tilt) = match &r.seated {
            Some(p) => {
                let seg = p.segments.iter().find(|g| g.upper.name() == "L4").unwrap();
                (seg.disc_height_change_mm, seg.rotation_deg)
            }
            None => (0.0, [0.0; 3]),
        };
        assert_eq!(r.seated.is_some(), d > 0.0);
        println!(
            "ALIF, distraction {d} mm: seated L4-L5 disc height {opened:+.3} mm, rotation {:+.2}/{:+.2}/{:+.2} deg; axial rotation {:.2} -> {:.2} deg ({change:+.1} %), cage force on L4 {force:.1} N, {} it",
            tilt[0],
            tilt[1],
            tilt[2],
            l4l5(&intact),
            l4l5(&r),
            r.iterations
        );
        rows.push((change, force, opened, tilt[0]));
    }
    // The disc space opens by about the distraction (the stiff cage and its contact take
    // little of it), a little more at the endplates' centre than at the cage: the segment
    // tilts into lordosis (extension, -x) about the posterior structures that tether it,
    // the ALL being cut.
    for (r, d) in rows[1..].iter().zip([1.0, 2.0]) {
        assert!(r.2 > 0.8 * d && r.2 < 1.3 * d, "{d} mm: {rows:?}");
        assert!(r.3 < -0.25 * d, "{d} mm: {rows:?}");
    }
    for w in rows.windows(2) {
        assert!(w[1].0 < w[0].0, "rotation falls with distraction: {rows:?}");
        assert!(w[1].1 > w[0].1, "the cage is pressed harder: {rows:?}");
    }
}
