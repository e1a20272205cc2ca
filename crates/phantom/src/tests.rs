use super::*;
use crate::sdf::V3;

#[test]
#[ignore]
fn probe() {
    let spec = PhantomSpec::default();
    let chain = spine::layout(&spec);
    let i = chain.iter().position(|p| p.level == spinetwin_anatomy::Level::L3).unwrap();
    let v = spine::VertebraModel::new(&chain, i, false, false);
    for &(y, z) in &[(24.0, 0.0), (24.0, 5.0), (20.0, 5.0), (30.0, 5.0)] {
        let mut s = String::new();
        for xi in 0..60 {
            let x = xi as f64;
            let m = v.sample_local(V3::new(x, y, z));
            s.push(if m.bone <= 0.0 { if m.body <= m.post {'B'} else {'#'} } else if m.canal <= 0.0 {'c'} else {'.'});
        }
        println!("y={y} z={z}: {s}");
    }
    for zi in -20..=20 {
        let z = zi as f64;
        let mut s = String::new();
        for yi in -20..70 {
            let m = v.sample_local(V3::new(16.0, yi as f64, z));
            s.push(if m.bone <= 0.0 { if m.body <= m.post {'B'} else {'#'} } else if m.canal <= 0.0 {'c'} else {'.'});
        }
        println!("x=16 z={z:>3}: {s}");
    }
}
