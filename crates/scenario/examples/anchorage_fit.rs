//! Calibration of the screw anchorage factor (`spinetwin_model::anchorage`): the L3-L5
//! phantom specimen (the set-up of `tests/literature.rs`), intact and with bilateral L4-L5
//! pedicle screws, 7.5 N m pure moments; for each factor (fraction of the cancellous
//! modulus carried by the thread-bone interface) the L4-L5 ROM change in flexion-extension,
//! lateral bending and axial rotation, against the in-vitro -81 / -73 / -48 %
//! (`../shared/reference/scenarios.csv`), and the PLIF with bilateral facetectomy and screws
//! against its in-vitro axial-rotation ratio 0.41 (validation, not fitted).
//!
//! ```text
//! cargo run --release -p spinetwin-scenario --example anchorage_fit -- [FACTOR...]
//! ```
use spinetwin_fem::nl::SolveOptions;
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{Fidelity, Twin, TwinFile, TwinParams, TWIN_SCHEMA_VERSION};
use spinetwin_scenario::{apply, Scenario};

const MOTIONS: [Motion; 4] = [
    Motion::Flexion,
    Motion::Extension,
    Motion::LateralBendingLeft,
    Motion::AxialRotationLeft,
];

fn rom(t: &Twin, motion: Motion) -> f64 {
    let r = t
        .simulate(
            &LoadCase::pure_moment(motion, 7.5, 0.0),
            &SolveOptions::default(),
        )
        .expect("solve");
    assert!(r.converged, "{} did not converge", motion.name());
    let (axis, sign) = motion.axis_sign();
    let s = r.last().expect("state");
    let seg = s
        .segments
        .iter()
        .find(|g| g.upper.name() == "L4")
        .expect("L4-L5");
    sign * seg.rotation_deg[axis]
}

fn main() {
    let factors: Vec<Option<f64>> = {
        let a: Vec<Option<f64>> = std::env::args()
            .skip(1)
            .map(|v| (v != "rigid").then(|| v.parse().expect("factor")))
            .collect();
        if a.is_empty() {
            vec![None, Some(1.0), Some(0.1), Some(0.03), Some(0.01)]
        } else {
            a
        }
    };
    let ph = spinetwin_phantom::generate(&Default::default()).expect("phantom");
    let seg = spinetwin_segment::segment(&ph.ct, &Default::default()).expect("segment");
    let mut lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &seg.labels).expect("landmarks");
    let keep = ["L3", "L4", "L5"];
    lm.vertebrae.retain(|v| keep.contains(&v.level.name()));
    lm.discs
        .retain(|d| keep.contains(&d.upper.name()) && keep.contains(&d.lower.name()));
    let twin = Twin::build(TwinFile {
        schema_version: TWIN_SCHEMA_VERSION,
        fidelity: Fidelity::Hybrid,
        source: "phantom L3-L5".into(),
        pseudonym: String::new(),
        params: TwinParams::default(),
        landmarks: lm,
    })
    .expect("twin");
    let intact: Vec<f64> = MOTIONS.iter().map(|&m| rom(&twin, m)).collect();
    println!(
        "intact L4-L5: flexion {:.3}, extension {:.3}, lateral bending {:.3}, axial rotation {:.3} deg",
        intact[0], intact[1], intact[2], intact[3]
    );
    let parse = |text: &str| Scenario::parse(text, "anchorage_fit.toml").expect("scenario");
    let screws = parse(
        "name = \"screws\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nsides = \"both\"\n",
    );
    let plif = parse(
        "name = \"PLIF\"\n[[operation]]\nkind = \"facetectomy\"\nsegment = \"L4-L5\"\nsides = \"both\"\n[[operation]]\nkind = \"interbody_cage\"\nsegment = \"L4-L5\"\nfootprint = \"plif\"\n[[operation]]\nkind = \"pedicle_screws\"\nlevels = [\"L4\", \"L5\"]\nsides = \"both\"\n",
    );
    let (s0, p0) = (
        apply(&twin, &screws).expect("screws"),
        apply(&twin, &plif).expect("plif"),
    );
    let base: Vec<Option<f64>> = s0
        .twin
        .implants
        .screws
        .iter()
        .map(|s| s.anchorage_modulus_mpa)
        .collect();
    let factor = spinetwin_model::anchorage::ANCHORAGE_FACTOR;
    println!(
        "screw foundation moduli at the default factor {factor}: {:?} MPa",
        base
    );
    println!("| factor | FE % (flexion / extension) | LB % | AR % | PLIF + screws AR ratio |");
    println!("|---|---|---|---|---|");
    for f in factors {
        let scale = |t: &Twin| -> Twin {
            let mut t = t.clone();
            for s in &mut t.implants.screws {
                s.anchorage_modulus_mpa = match (f, s.anchorage_modulus_mpa) {
                    (Some(f), Some(m)) => Some(m / factor * f),
                    _ => None,
                };
            }
            t
        };
        let (st, pt) = (scale(&s0.twin), scale(&p0.twin));
        let s: Vec<f64> = MOTIONS.iter().map(|&m| rom(&st, m)).collect();
        let fe = ((s[0] + s[1]) / (intact[0] + intact[1]) - 1.0) * 100.0;
        let lb = (s[2] / intact[2] - 1.0) * 100.0;
        let ar = (s[3] / intact[3] - 1.0) * 100.0;
        let plif_ar = rom(&pt, Motion::AxialRotationLeft) / intact[3];
        let (fl, ex) = (
            (s[0] / intact[0] - 1.0) * 100.0,
            (s[1] / intact[1] - 1.0) * 100.0,
        );
        println!(
            "| {} | {fe:+.1} ({fl:+.1} / {ex:+.1}) | {lb:+.1} | {ar:+.1} | {plif_ar:.2} |",
            f.map_or("rigid".to_string(), |f| format!("{f}"))
        );
    }
}
