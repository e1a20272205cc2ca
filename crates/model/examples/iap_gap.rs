//! Diagnostic of facet-joint geometry, on the built-in phantom or on a label map
//! (`MASK=path`, VerSe numbering; a CT is made up from the mask): for every pair of adjacent
//! vertebrae, the height of the facet joint centre above the lower vertebra's superior
//! endplate centre (along its cranial axis), and at L4-L5 how far the tip of each inferior
//! articular process of L4 sits above the bone of L5 directly below it (the bony stop of
//! the joint in extension).
//!
//! `cargo run --release -p spinetwin-model --example iap_gap` (`FACETS=anatomical` for the
//! phantom's anatomical facet joints)
use nalgebra::Vector3;
use spinetwin_anatomy::Level;

fn main() {
    let (ct, labels) = if let Ok(m) = std::env::var("MASK") {
        let labels = spinetwin_imaging::nifti::read_labels(std::path::Path::new(&m)).unwrap();
        (labels.map(|v| if v > 0 { 400.0f32 } else { 0.0 }), labels)
    } else {
        let spec = spinetwin_phantom::PhantomSpec {
            facet_joints: match std::env::var("FACETS").as_deref() {
                Ok("anatomical") => spinetwin_phantom::FacetJoints::Anatomical,
                _ => spinetwin_phantom::FacetJoints::MidDisc,
            },
            ..Default::default()
        };
        let ph = spinetwin_phantom::generate(&spec).unwrap();
        (ph.ct, ph.labels)
    };
    let lm = spinetwin_segment::landmarks::landmarks(&ct, &labels).unwrap();
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    for w in lm.vertebrae.windows(2) {
        let (up, lo) = (&w[0], &w[1]);
        let sides = [
            (&up.inferior_facets.left, &lo.superior_facets.left),
            (&up.inferior_facets.right, &lo.superior_facets.right),
        ];
        let heights: Vec<String> = sides
            .iter()
            .filter_map(|(a, b)| {
                let (a, b) = (a.as_ref()?, b.as_ref()?);
                let c: [f64; 3] = std::array::from_fn(|k| {
                    (a.centre[k] + b.centre[k]) / 2.0 - lo.superior_endplate.centre[k]
                });
                Some(format!("{:.1}", dot(c, lo.frame.z)))
            })
            .collect();
        println!(
            "{}-{}: facet joint centre above the lower superior endplate (mm, left right): {}",
            up.level.name(),
            lo.level.name(),
            heights.join(" ")
        );
    }
    let (Some(l4), Some(l5)) = (lm.vertebra(Level::L4), lm.vertebra(Level::L5)) else {
        println!("no L4-L5 in this anatomy: no articular process tips measured");
        return;
    };
    let g = labels.grid();
    let [nx, ny, nz] = labels.dims();
    let z5 = Vector3::from(l5.frame.z);
    let down = -z5;
    for (side, f) in [
        ("left", &l4.inferior_facets.left),
        ("right", &l4.inferior_facets.right),
    ] {
        let Some(f) = f else { continue };
        let c = Vector3::from(f.centre);
        // L4 voxels within 10 mm (across z) of the facet centre: the inferior articular
        // process; its lowest voxels along L5's cranial axis are the tip.
        let mut pts = Vec::new();
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    if labels.get(i, j, k) != l4.label {
                        continue;
                    }
                    let p = g.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                    let d = p - c;
                    let h = d - z5 * d.dot(&z5);
                    if h.norm() < 10.0 {
                        pts.push(p);
                    }
                }
            }
        }
        pts.sort_by(|a, b| a.dot(&z5).total_cmp(&b.dot(&z5)));
        let tip = pts[0];
        let mut best = f64::INFINITY;
        for p in pts.iter().take(30) {
            // March down until L5 bone.
            let mut t = 0.0;
            while t < 25.0 {
                t += 0.25;
                let q = g.world_to_index(p + down * t);
                let (i, j, k) = (q.x.round(), q.y.round(), q.z.round());
                if i < 0.0 || j < 0.0 || k < 0.0 {
                    break;
                }
                let (i, j, k) = (i as usize, j as usize, k as usize);
                if i >= nx || j >= ny || k >= nz {
                    break;
                }
                if labels.get(i, j, k) == l5.label {
                    best = best.min(t);
                    break;
                }
            }
        }
        let rel = tip - Vector3::from(l5.frame.origin);
        println!(
            "{side}: IAP tip {:.1} mm above L5 centre, {:.1} mm posterior; facet centre {:.1} mm above the tip; gap to L5 bone below: {best:.2} mm",
            rel.dot(&z5),
            rel.dot(&Vector3::from(l5.frame.y)),
            (c - tip).dot(&z5)
        );
    }
}
