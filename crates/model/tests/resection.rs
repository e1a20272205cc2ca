//! The regions a decompression removes, placed from a phantom's landmarks: each takes the
//! bone it names and leaves the rest (pedicles, the body, the other side, the facets).

use nalgebra::Vector3;
use spinetwin_anatomy::{Level, LevelRange};
use spinetwin_model::resection::Resection;
use spinetwin_segment::landmarks::VertebraLandmarks;

fn phantom() -> (spinetwin_phantom::Phantom, Vec<VertebraLandmarks>) {
    let ph = spinetwin_phantom::generate(&spinetwin_phantom::PhantomSpec {
        levels: LevelRange::new(Level::L3, Level::L5, false).unwrap(),
        ..Default::default()
    })
    .unwrap();
    let lm = spinetwin_segment::landmarks::landmarks(&ph.ct, &ph.labels).unwrap();
    (ph, lm.vertebrae)
}

/// `p` moved by `d` mm along the local axis `axis` of `v`'s frame.
fn along(v: &VertebraLandmarks, p: [f64; 3], axis: usize, d: f64) -> [f64; 3] {
    let a = [v.frame.x, v.frame.y, v.frame.z][axis];
    [0, 1, 2].map(|k| p[k] + d * a[k])
}

/// Volume (cm^3) of `v`'s labelled bone inside `r`, and of all its bone.
fn volumes(ph: &spinetwin_phantom::Phantom, v: &VertebraLandmarks, r: &Resection) -> (f64, f64) {
    let g = ph.labels.grid();
    let dims = ph.labels.dims();
    let (mut inside, mut all) = (0usize, 0usize);
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                if ph.labels.get(i, j, k) != v.label {
                    continue;
                }
                all += 1;
                let p = g.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                if r.contains([p.x, p.y, p.z]) {
                    inside += 1;
                }
            }
        }
    }
    let voxel = g.spacing.iter().product::<f64>() / 1000.0;
    (inside as f64 * voxel, all as f64 * voxel)
}

#[test]
fn decompression_regions_take_what_they_name() {
    let (ph, lm) = phantom();
    let v = lm.iter().find(|v| v.level == Level::L4).unwrap();
    let peds = v.pedicles.as_ref().unwrap();
    let keep = |r: &Resection, what: &str, p: [f64; 3]| {
        assert!(!r.contains(p), "{}: {what} removed", r.what);
    };
    // Laminectomy: the spinous tip and the laminae's midline edges go; the pedicle entries,
    // the facets and the body stay.
    let lam = Resection::laminectomy(v).unwrap();
    for (what, p) in [
        ("spinous tip", along(v, v.spinous_tip.unwrap(), 1, -1.0)),
        (
            "lamina superior edge",
            along(v, v.lamina_superior.unwrap(), 2, -1.0),
        ),
        (
            "lamina inferior edge",
            along(v, v.lamina_inferior.unwrap(), 2, 1.0),
        ),
    ] {
        assert!(lam.contains(p), "laminectomy keeps the {what}");
    }
    keep(&lam, "the body centre", v.frame.origin);
    keep(&lam, "the left pedicle entry", peds.left.entry);
    keep(&lam, "the right pedicle entry", peds.right.entry);
    for f in [&v.superior_facets, &v.inferior_facets] {
        for s in [&f.left, &f.right] {
            keep(&lam, "a facet centre", s.as_ref().unwrap().centre);
        }
    }
    let (cut, all) = volumes(&ph, v, &lam);
    println!("L4 laminectomy: {cut:.2} of {all:.2} cm^3 of bone");
    assert!(cut > 1.0 && cut < 0.35 * all, "{cut} of {all} cm^3");

    // Hemilaminectomy (left): the left lamina goes, the spinous process and the right side
    // stay; it removes less than the laminectomy.
    let hemi = Resection::hemilaminectomy(v, true).unwrap();
    let lam_l = along(v, along(v, v.lamina_inferior.unwrap(), 2, 1.0), 0, 6.0);
    assert!(
        hemi.contains(lam_l),
        "left hemilaminectomy keeps the left lamina"
    );
    keep(
        &hemi,
        "the spinous tip",
        along(v, v.spinous_tip.unwrap(), 1, -1.0),
    );
    keep(
        &hemi,
        "the right lamina",
        along(v, along(v, v.lamina_inferior.unwrap(), 2, 1.0), 0, -6.0),
    );
    let (cut_h, _) = volumes(&ph, v, &hemi);
    println!("L4 left hemilaminectomy: {cut_h:.2} cm^3");
    assert!(cut_h > 0.2 && cut_h < 0.6 * cut, "{cut_h} against {cut}");

    // Total facetectomy L4-L5 left: L4's left inferior articular process, behind its
    // cartilage; not the joint space in front, not the right side, not the body.
    let f = v.inferior_facets.left.as_ref().unwrap();
    let iap = Resection::articular_process(v, false, true).unwrap();
    let n = Vector3::from(f.normal);
    let behind = (Vector3::from(f.centre) - n * 2.0).into();
    let front = (Vector3::from(f.centre) + n * 2.0).into();
    assert!(
        iap.contains(behind),
        "the process behind the cartilage stays"
    );
    keep(&iap, "the joint space in front of the cartilage", front);
    keep(
        &iap,
        "the right process",
        v.inferior_facets.right.as_ref().unwrap().centre,
    );
    keep(&iap, "the body centre", v.frame.origin);
    let (cut_f, _) = volumes(&ph, v, &iap);
    println!("L4 left inferior articular process: {cut_f:.2} cm^3");
    assert!(cut_f > 0.2 && cut_f < 3.0, "{cut_f}");
    // Missing landmarks are named.
    let mut bare = v.clone();
    bare.pedicles = None;
    let e = Resection::laminectomy(&bare).unwrap_err();
    assert!(e.contains("L4") && e.contains("pedicles"), "{e}");
}
