//! Diagnostic: what resists a motion at one segment. Solves a pure moment on a twin intact,
//! without the segment's facet contacts, without its capsules and without both, and prints
//! the segment's rotation, facet forces, nucleus pressure and the summed fibre force of each
//! ligament there.
//!
//! ```text
//! cargo run --release -p spinetwin-scenario --example facet_share -- TWIN.json L4 e|f|al|ll [N_M]
//! ```
use std::collections::BTreeMap;

use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::ligament::Ligament;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{Twin, TwinFile};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 4 {
        eprintln!("usage: facet_share TWIN.json UPPER_LEVEL e|f|al|ll [moment N m]");
        std::process::exit(2);
    }
    let file: TwinFile =
        serde_json::from_slice(&std::fs::read(&a[1]).expect("twin file")).expect("twin JSON");
    let twin = Twin::build(file).expect("twin");
    let i = twin
        .levels
        .iter()
        .position(|l| l.name() == a[2])
        .expect("level");
    let motion = match a[3].as_str() {
        "f" => Motion::Flexion,
        "e" => Motion::Extension,
        "al" => Motion::AxialRotationLeft,
        "ll" => Motion::LateralBendingLeft,
        m => panic!("unknown motion {m}"),
    };
    let nm: f64 = a.get(4).map_or(7.5, |v| v.parse().expect("moment"));
    let case = LoadCase::pure_moment(motion, nm, 0.0);
    let (axis, sign) = motion.axis_sign();
    for (name, contact, capsule) in [
        ("intact", true, true),
        ("no facet contact", false, true),
        ("no capsule", true, false),
        ("neither", false, false),
    ] {
        let mut t = twin.clone();
        if !contact {
            t.facets.retain(|f| f.upper != i);
        }
        if !capsule {
            t.fibres
                .retain(|f| !(f.bodies[0] == i && f.ligament == Ligament::Cl));
        }
        let r = t.simulate(&case, &SolveOptions::default()).expect("solve");
        if !r.converged {
            println!("{name}: not converged: {:?}", r.failure);
            continue;
        }
        let s = r.samples.last().unwrap();
        let g = &s.segments[i];
        let mut lig: BTreeMap<String, f64> = BTreeMap::new();
        let forces = &r.deformed.as_ref().unwrap().fibre_forces;
        for (f, force) in t.fibres.iter().zip(forces) {
            if f.bodies[0] == i {
                *lig.entry(format!("{:?}", f.ligament)).or_default() += force;
            }
        }
        println!(
            "{name:>17}: rotation {:.2} deg, facets {:?} N, stops {:?}, IDP {:.3} MPa, height {:+.3} mm, ligaments (N) {:?}",
            sign * g.rotation_deg[axis],
            g.facet_force_n.map(|f| f.map(|v| (v * 10.0).round() / 10.0)),
            g.stop_force_n,
            g.idp_mpa,
            g.disc_height_change_mm,
            lig.iter()
                .map(|(k, v)| format!("{k} {v:.0}"))
                .collect::<Vec<_>>()
        );
    }
}
