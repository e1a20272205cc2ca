//! The follower load on a whole lumbar spine (issue 5: "the follower load must lower AR ROM
//! slightly and raise IDP"), on the phantom's L1-L5 twin against Rohlmann et al. 2001 (Spine
//! 26:E557, ten L1-L5 specimens, 7.5 N m with and without a 280 N follower load): "an
//! additional follower load increased the intradiscal pressure, slightly reduced the
//! intersegmental rotation for axial rotation, and hardly affected intersegmental rotation
//! for lateral bending and flexion-extension". Their per-level numbers are not in
//! `../shared/reference/`, so the check is of those statements, read as: IDP higher at every
//! level in every motion; the L1-L5 axial rotation lower by under 20 %; lateral bending and
//! the flexion-extension range (flexion plus extension) within 10 %. Measured 2026-12-05:
//! axial rotation -4.6 %, lateral bending +0.1 %, flexion-extension -3.7 % (flexion alone
//! +18.3 %, extension -23.8 %: the preload shifts the neutral position towards flexion);
//! docs/validation/twin_phantom.md.
//!
//! `cargo test --release -p spinetwin-model --test follower_l1l5 -- --ignored --nocapture`

use spinetwin_anatomy::{Level, LevelRange};
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::*;

#[test]
#[ignore = "eight nonlinear solves of a four-segment spine: release mode (CI runs it)"]
fn a_follower_load_raises_idp_and_barely_changes_rom_as_rohlmann_found() {
    let ph = spinetwin_phantom::generate(&spinetwin_phantom::PhantomSpec {
        levels: LevelRange::new(Level::L1, Level::L5, false).unwrap(),
        ..Default::default()
    })
    .unwrap();
    let file = TwinFile {
        schema_version: TWIN_SCHEMA_VERSION,
        fidelity: Fidelity::Hybrid,
        source: "phantom L1-L5, reference labels".into(),
        pseudonym: String::new(),
        params: TwinParams::default(),
        landmarks: spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap(),
    };
    let twin = Twin::build(file).unwrap();
    assert_eq!(twin.levels.first(), Some(&Level::L1));
    assert_eq!(twin.levels.last(), Some(&Level::L5));
    // Per motion and follower: the primary rotation per level (deg) and the IDP (MPa).
    let run = |m: Motion, follower: f64| -> (Vec<f64>, Vec<f64>) {
        let r = twin
            .simulate(
                &LoadCase::pure_moment(m, 7.5, follower),
                &SolveOptions::default(),
            )
            .unwrap();
        assert!(r.converged, "{} {follower} N: {:?}", m.name(), r.failure);
        let last = r.samples.last().unwrap();
        let (axis, sign) = m.axis_sign();
        (
            last.segments
                .iter()
                .map(|s| s.rotation_deg[axis] * sign)
                .collect(),
            last.segments.iter().map(|s| s.idp_mpa).collect(),
        )
    };
    let mut total = std::collections::BTreeMap::new();
    for m in [
        Motion::Flexion,
        Motion::Extension,
        Motion::LateralBendingLeft,
        Motion::AxialRotationLeft,
    ] {
        let (rom0, idp0) = run(m, 0.0);
        let (rom1, idp1) = run(m, 280.0);
        println!(
            "{:<22} ROM {:?} -> {:?} deg; IDP {:?} -> {:?} MPa",
            m.name(),
            rom0.iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            rom1.iter()
                .map(|x| (x * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            idp0.iter()
                .map(|x| (x * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
            idp1.iter()
                .map(|x| (x * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>(),
        );
        for (k, (a, b)) in idp0.iter().zip(&idp1).enumerate() {
            assert!(
                b > a,
                "{}: IDP at segment {k} {a:.3} -> {b:.3} MPa",
                m.name()
            );
        }
        total.insert(
            m.name(),
            (rom0.iter().sum::<f64>(), rom1.iter().sum::<f64>()),
        );
    }
    let change = |a: f64, b: f64| 100.0 * (b - a) / a;
    let (a0, a1) = total["axial_rotation_left"];
    let (l0, l1) = total["lateral_bending_left"];
    let (f0, f1) = total["flexion"];
    let (e0, e1) = total["extension"];
    let (ar, lb, fe) = (change(a0, a1), change(l0, l1), change(f0 + e0, f1 + e1));
    println!(
        "L1-L5 with 280 N: axial rotation {ar:+.1} %, lateral bending {lb:+.1} %, flexion-extension {fe:+.1} % (flexion {:+.1} %, extension {:+.1} %)",
        change(f0, f1),
        change(e0, e1)
    );
    assert!((-20.0..0.0).contains(&ar), "axial rotation {ar:+.1} %");
    assert!(lb.abs() < 10.0, "lateral bending {lb:+.1} %");
    assert!(fe.abs() < 10.0, "flexion-extension {fe:+.1} %");
}
