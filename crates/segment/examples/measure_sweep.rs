//! Issue 3's angle acceptance through the automatic segmentation: on every phantom
//! combination of the segmentation sweep ([`PhantomSpec::sweep`]), the coronal Cobb
//! angle, the lordosis L1-S1, the sacral slope and the segments' sagittal and coronal angles
//! measured from `segment` -> `landmarks` -> `measure`, against the phantom's truth. The
//! landmark table (docs/segment/landmarks.md) measures them from the reference labels.
//!
//! `cargo run --release -p spinetwin-segment --example measure_sweep [-- SPACING]`

use spinetwin_phantom::{generate, PhantomSpec};
use spinetwin_segment::landmarks::landmarks;
use spinetwin_segment::measures::measure;
use spinetwin_segment::{segment, SegmentOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let only: Option<f64> = match std::env::args().nth(1) {
        Some(a) => Some(
            a.parse()
                .map_err(|_| format!("spacing {a:?}: not a number of mm"))?,
        ),
        None => None,
    };
    let specs: Vec<PhantomSpec> = PhantomSpec::sweep()
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == s.spacing_mm))
        .collect();
    if specs.is_empty() {
        return Err(format!(
            "spacing {} mm is not one of the sweep's spacings (0.6, 1, 1.5)",
            only.unwrap_or_default()
        )
        .into());
    }
    println!(
        "| case | Cobb truth | Cobb error | lordosis error | sacral slope error | segment sagittal max | segment coronal max |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut worst = [0.0f64; 5];
    for spec in specs {
        let case = spec.sweep_name();
        let ph = generate(&spec)?;
        let seg = segment(&ph.ct, &SegmentOptions::default())?;
        let lm = landmarks(&ph.ct, &seg.labels)?;
        let m = measure(&lm);
        let a = &ph.truth.angles;
        let diff = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs(),
            _ => f64::NAN,
        };
        let cobb_t = a.coronal_cobb.as_ref().map(|c| c.angle_deg);
        let e_cobb = diff(m.coronal_cobb.as_ref().map(|c| c.angle_deg), cobb_t);
        let e_lord = diff(m.lumbar_lordosis_l1_s1_deg, a.lumbar_lordosis_l1_s1_deg);
        let e_slope = diff(m.sacral_slope_deg, a.sacral_slope_deg);
        // A segment the measures miss makes both maxima NaN (f64::max would drop it).
        let (mut e_sag, mut e_cor, mut missing) = (0.0f64, 0.0f64, false);
        for s in &a.segments {
            match m
                .segments
                .iter()
                .find(|g| g.upper.name() == s.upper && g.lower.name() == s.lower)
            {
                Some(g) => {
                    e_sag = e_sag.max((g.sagittal_deg - s.sagittal_deg).abs());
                    e_cor = e_cor.max((g.coronal_deg - s.coronal_deg).abs());
                }
                None => missing = true,
            }
        }
        if missing {
            (e_sag, e_cor) = (f64::NAN, f64::NAN);
        }
        for (w, e) in worst
            .iter_mut()
            .zip([e_cobb, e_lord, e_slope, e_sag, e_cor])
        {
            *w = if e.is_nan() || w.is_nan() {
                f64::NAN
            } else {
                w.max(e)
            };
        }
        println!(
            "| {case} | {} | {e_cobb:.2} | {e_lord:.2} | {e_slope:.2} | {e_sag:.2} | {e_cor:.2} |",
            cobb_t.map_or("-".to_string(), |c| format!("{c:.1}"))
        );
    }
    println!(
        "\nworst: Cobb {:.2}, lordosis {:.2}, sacral slope {:.2}, segment sagittal {:.2}, segment coronal {:.2} deg",
        worst[0], worst[1], worst[2], worst[3], worst[4]
    );
    Ok(())
}
