// Temporary debugging harness (not committed).
use spinetwin_model::loadcase::{LoadCase, Motion};
use spinetwin_model::twin::{Twin, TwinFile};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let file: TwinFile = serde_json::from_slice(&std::fs::read(&a[1]).unwrap()).unwrap();
    let twin = Twin::build(file).unwrap();
    let sc = spinetwin_scenario::Scenario::parse(&std::fs::read_to_string(&a[2]).unwrap(), &a[2]).unwrap();
    let m = spinetwin_scenario::apply(&twin, &sc).unwrap();
    let motion = match a[3].as_str() { "f" => Motion::Flexion, "e" => Motion::Extension, "l" => Motion::LateralBendingLeft, _ => Motion::AxialRotationLeft };
    let case = LoadCase::pure_moment(motion, 7.5, 0.0);
    let (model, _) = m.twin.fem_model(&case).unwrap();
    let r = spinetwin_fem::nl::solve(&model, &Default::default()).unwrap();
    println!("converged {} {:?} iters {}", r.converged, r.failure, r.iterations);
    for s in &r.steps { for inc in &s.increments { println!("  {:.4}->{:.4} it {} conv {} res {:?} {:?}", inc.from, inc.to, inc.iterations, inc.converged, inc.residuals.iter().map(|x| format!("{x:.1e}")).collect::<Vec<_>>(), inc.failure); } }
    let res = m.twin.simulate(&case, &Default::default()).unwrap();
    let v = serde_json::to_value(&res).unwrap();
    println!("{}", serde_json::to_string(&v["levels"]).unwrap().chars().take(2500).collect::<String>());
}
