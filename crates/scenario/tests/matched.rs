//! ROM-matched (hybrid) control with real solves on a small, coarse twin (L3-L5 of the
//! phantom, coarse disc meshes, one fibre per ligament): the matched solve reproduces the
//! intact total ROM within the tolerance, pedicle screws need a larger moment than the
//! nominal one, and the comparison gets its `rom-matched` rows.

mod common;

use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::Twin;
use spinetwin_scenario::matched::total_rom;
use spinetwin_scenario::{
    apply, compare, rom_matched, MatchOptions, Scenario, CONTROL_ROM_MATCHED,
};

fn coarse(levels: &[&str]) -> Twin {
    let mut file = common::specimen_file(levels);
    let p = &mut file.params;
    p.disc_mesh.n_circ = 12;
    p.disc_mesh.n_radial_annulus = 2;
    p.disc_mesh.n_radial_nucleus = 1;
    p.disc_mesh.n_layers = 2;
    p.ligaments.fibres = 1;
    Twin::build(file).unwrap()
}

#[test]
fn rom_matched_screws_reach_the_intact_total_rom_with_a_larger_moment() {
    let twin = coarse(&["L3", "L4", "L5"]);
    let s = Scenario::parse(
        "name = \"screws\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\n",
        "screws.toml",
    )
    .unwrap();
    let screws = apply(&twin, &s).unwrap();
    let opts = SolveOptions::default();
    let case = LoadCase::pure_moment(Motion::Flexion, 5.0, 0.0);
    let intact = twin.simulate(&case, &opts).unwrap();
    let load = screws.twin.simulate(&case, &opts).unwrap();
    assert!(intact.converged && load.converged);
    let target = total_rom(&intact).unwrap();
    assert!(total_rom(&load).unwrap() < target, "screws stiffen");
    let options = MatchOptions::default();
    let m = rom_matched("screws", &intact, &load, &options, |c: &LoadCase| {
        screws.twin.simulate(c, &opts)
    });
    println!(
        "M' = {:?} Nm after {} solves, trials {:?}",
        m.matched_moment_nm, m.solves, m.trials
    );
    assert!(m.matched, "{}", m.note);
    let rom = m.matched_total_rom_deg.unwrap();
    assert!(
        (rom - target).abs() <= options.tolerance * target,
        "ROM {rom} vs intact {target}"
    );
    assert!(m.matched_moment_nm.unwrap() > 5.0, "{m:?}");
    assert!(m.solves <= options.max_solves);
    let r = m.result.as_ref().unwrap();
    assert!(r.converged);
    assert_eq!(total_rom(r), Some(rom));

    let mut cmp = compare(
        &twin,
        std::slice::from_ref(&intact),
        &[(&screws, vec![load])],
    );
    cmp.add_rom_matched(&screws, &[intact], vec![m]);
    let rot = |control: &str, level: &str| {
        cmp.rows
            .iter()
            .find(|r| {
                r.control == control && r.level == level && r.metric.ends_with("rotation_deg")
            })
            .unwrap_or_else(|| panic!("{control} {level}"))
    };
    // The adjacent level moves more when the whole twin has to move as far as intact.
    let (l, h) = (rot("load", "L3-L4"), rot(CONTROL_ROM_MATCHED, "L3-L4"));
    assert!(h.value.unwrap() > l.value.unwrap(), "{l:?} {h:?}");
    assert!(h.scenario_moment_nm.unwrap() > 5.0);
    let total = rot(CONTROL_ROM_MATCHED, "L3-L5");
    assert!(total.change_pct.unwrap().abs() <= 1.0, "{total:?}");
    let csv = cmp.to_csv();
    assert!(csv.contains(",rom-matched,"), "{csv}");
    let html = cmp.to_html();
    assert!(html.contains("ROM-matched (hybrid) control"));
    let p = cmp.paragraph(&cmp.scenarios[0]);
    assert!(p.contains("ROM-matched"), "{p}");
}
