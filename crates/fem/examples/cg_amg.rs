//! CG + smoothed-aggregation AMG on the Tet10 block of `spinetwin bench fem`, with the AMG
//! parameters on the command line (for tuning):
//! `cargo run --release -p spinetwin-fem --example cg_amg -- NX NY NZ [DEGREE] [THETA] [MAX_COARSE]`.

use spinetwin_fem::*;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: f64| a.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(d);
    let cells = [num(0, 14.0), num(1, 10.0), num(2, 8.0)].map(|v| v as usize);
    let t = Instant::now();
    let mesh = box_mesh([40.0, 30.0, 25.0], cells, Order::Quadratic)?;
    let mat = LinearElastic::uniform(mesh.num_elements(), 500.0, 0.3)?;
    let mut bc = Constraints::new();
    bc.fix(mesh.node_set("zmin")?, [true; 3]);
    let mut loads = Loads::new();
    loads.pressure(mesh.face_set("zmax")?, 1.0);
    let mut opts = SolverOptions {
        method: LinearMethod::CgAmg,
        ..Default::default()
    };
    opts.iterative.amg.smoother_degree = num(3, 3.0) as usize;
    opts.iterative.amg.strength_threshold = num(4, 0.08);
    opts.iterative.amg.max_coarse = num(5, 2000.0) as usize;
    let mesh_s = t.elapsed().as_secs_f64();
    let s = solve_linear_static_with(&mesh, &mat, &bc, &loads, &opts)?;
    let st = s.iterative.as_ref().ok_or("no iterative stats")?;
    println!(
        "{} equations (mesh {mesh_s:.2} s): setup {:.2} s, {} iterations in {:.2} s, levels {:?}, operator complexity {:.2}, residual {:.1e}",
        s.num_equations,
        st.setup.as_secs_f64(),
        st.iterations,
        st.solve.as_secs_f64(),
        st.level_equations,
        st.operator_complexity,
        s.relative_residual
    );
    Ok(())
}
