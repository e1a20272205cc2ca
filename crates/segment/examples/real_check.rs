//! Where the automatic segmentation of a real CT differs from its reference labels.
//!
//! `cargo run --release -p spinetwin-segment --example real_check -- CT REFERENCE OUT_DIR`
//!
//! The reference must be on the CT grid (as the VerSe cases are). Prints, per reference
//! vertebra: the Dice; the missed voxels by HU and side of the canal (body in front, arch
//! behind); the extra voxels by HU and by distance from the nearest reference vertebra (far
//! ones are other structures: aorta, ribs, a vertebra the reference leaves out); the voxels
//! given to another level (behind the canal, binned by distance from the midline and depth
//! behind the canal front); and the body's cranio-caudal extent in both. Then the outline's
//! ceiling: the Dice per level if our outline were separated perfectly (every predicted
//! vertebra voxel given its nearest reference vertebra). Writes sagittal
//! previews (`sag<offset>_{ct,ref,pred,err}.png`; errors: missed green, extra purple, wrong
//! level yellow) and, with `AXIAL_K=k1,k2,..`, axial ones at those slice indices (with
//! `SAGITTAL_I=i1,i2,..`, sagittal ones at those column indices).

use nalgebra::Vector3;
use spinetwin_imaging::preview::{render_slice, Plane, Window};
use spinetwin_imaging::{nifti, Volume};
use spinetwin_segment::{segment, SegmentOptions};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: real_check CT REFERENCE OUT_DIR");
        std::process::exit(2);
    }
    let ct = nifti::read_volume(&PathBuf::from(&args[1]))?;
    let reference = nifti::read_labels(&PathBuf::from(&args[2]))?;
    let out = PathBuf::from(&args[3]);
    std::fs::create_dir_all(&out)?;
    let (gc, gr) = (ct.grid(), reference.grid());
    let same = gc.dims == gr.dims
        && (gc.origin - gr.origin).norm() < 1e-3
        && (0..3).all(|a| (gc.spacing[a] - gr.spacing[a]).abs() < 1e-4)
        && (gc.direction - gr.direction).norm() < 1e-4;
    if !same {
        return Err("the reference is not on the CT grid".into());
    }
    let seg = segment(&ct, &SegmentOptions::default())?;
    println!("bone threshold {:.0} HU", seg.bone_threshold_hu);
    for w in &seg.warnings {
        println!("warning: {w}");
    }
    let g = ct.grid().clone();
    let [nx, ny, nz] = g.dims;
    let (r, p, hu) = (reference.data(), seg.labels.data(), ct.data());
    let vert = |l: u16| (1..100).contains(&l);
    let world = |i: usize| {
        g.index_to_world(Vector3::new(
            (i % nx) as f64,
            ((i / nx) % ny) as f64,
            (i / (nx * ny)) as f64,
        ))
    };
    // Front of the canal per axial slice: the median P coordinate of the predicted canal
    // within 5 mm in S.
    let mut canal: Vec<(f64, f64)> = (0..p.len())
        .filter(|&i| p[i] == 200)
        .map(|i| {
            let w = world(i);
            (w.z, w.y)
        })
        .collect();
    canal.sort_by(|a, b| a.0.total_cmp(&b.0));
    let front: Vec<f64> = (0..nz)
        .map(|k| {
            let s = world(k * nx * ny).z;
            let lo = canal.partition_point(|c| c.0 < s - 5.0);
            let hi = canal.partition_point(|c| c.0 <= s + 5.0);
            let mut v: Vec<f64> = canal[lo..hi].iter().map(|c| c.1).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        })
        .collect();
    let in_front = |i: usize| world(i).y < front[i / (nx * ny)];
    // The midline: the median L coordinate of the predicted canal.
    let mut cx: Vec<f64> = (0..p.len())
        .filter(|&i| p[i] == 200)
        .map(|i| world(i).x)
        .collect();
    cx.sort_by(f64::total_cmp);
    let mid_x = cx.get(cx.len() / 2).copied().unwrap_or(0.0);
    // Distance (mm, along 6-neighbour paths, up to 20 mm) of every voxel to the reference bone.
    let sp = g.spacing;
    let mut dist = vec![f64::INFINITY; r.len()];
    // The reference vertebra each voxel's distance is taken to (for the outline's ceiling).
    let mut src = vec![0u16; r.len()];
    let mut heap = BinaryHeap::new();
    for (i, &l) in r.iter().enumerate() {
        if vert(l) {
            dist[i] = 0.0;
            src[i] = l;
            heap.push((Reverse(0u64), i));
        }
    }
    while let Some((Reverse(d), i)) = heap.pop() {
        let d = d as f64 / 1000.0;
        if d > dist[i] || d > 20.0 {
            continue;
        }
        let c = [
            (i % nx) as i64,
            ((i / nx) % ny) as i64,
            (i / (nx * ny)) as i64,
        ];
        for (a, s) in [(0usize, 1i64), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)] {
            let mut n = c;
            n[a] += s;
            if n.iter()
                .zip([nx, ny, nz])
                .any(|(&v, m)| v < 0 || v >= m as i64)
            {
                continue;
            }
            let j = n[0] as usize + nx * (n[1] as usize + ny * n[2] as usize);
            let nd = d + sp[a];
            if nd < dist[j] {
                dist[j] = nd;
                src[j] = src[i];
                heap.push((Reverse((nd * 1000.0) as u64), j));
            }
        }
    }
    let bucket = |h: f32| match h {
        h if h < 0.0 => 0,
        h if h < 100.0 => 1,
        h if h < 150.0 => 2,
        h if h < 300.0 => 3,
        _ => 4,
    };
    let quantile = |v: &[f64], f: f64| {
        v.get(((v.len() as f64 - 1.0) * f) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let mut levels: Vec<u16> = r.iter().copied().filter(|&l| vert(l)).collect();
    levels.sort_unstable();
    levels.dedup();
    println!(
        "HU buckets: <0 | 0-100 | 100-150 | 150-300 | >=300; distance from the reference bone: \
         <=2 | 2-5 | >5 mm"
    );
    for &l in &levels {
        let (mut nr, mut np, mut both) = (0usize, 0usize, 0usize);
        let (mut missed_hu, mut extra_hu, mut extra_far) = ([0usize; 5], [0usize; 5], [0usize; 3]);
        let (mut missed_front, mut wrong_front) = (0usize, 0usize);
        let mut wrong = BTreeMap::<u16, usize>::new();
        let (mut zr, mut zp) = (Vec::new(), Vec::new());
        for i in 0..r.len() {
            let (a, b) = (r[i] == l, p[i] == l);
            nr += a as usize;
            np += b as usize;
            both += (a && b) as usize;
            if a && in_front(i) {
                zr.push(world(i).z);
            }
            if b && in_front(i) {
                zp.push(world(i).z);
            }
            if a && !b && vert(p[i]) {
                *wrong.entry(p[i]).or_default() += 1;
                wrong_front += in_front(i) as usize;
            } else if a && !b {
                missed_hu[bucket(hu[i])] += 1;
                missed_front += in_front(i) as usize;
            } else if b && !vert(r[i]) {
                extra_hu[bucket(hu[i])] += 1;
                extra_far[match dist[i] {
                    d if d <= 2.0 => 0,
                    d if d <= 5.0 => 1,
                    _ => 2,
                }] += 1;
            }
        }
        zr.sort_by(f64::total_cmp);
        zp.sort_by(f64::total_cmp);
        println!(
            "label {l}: reference {nr}, predicted {np}, Dice {:.3}",
            2.0 * both as f64 / (nr + np).max(1) as f64
        );
        println!(
            "  missed {} ({missed_front} in front of the canal), HU {missed_hu:?}",
            missed_hu.iter().sum::<usize>()
        );
        println!(
            "  extra {}, HU {extra_hu:?}, distance {extra_far:?}",
            extra_hu.iter().sum::<usize>()
        );
        println!("  given to another level {wrong:?} ({wrong_front} in front of the canal)");
        // Behind the canal: the wrong-level voxels by distance from the midline (3 mm bins)
        // and depth behind the canal front (5 mm bins).
        let mut bins = BTreeMap::<(i64, i64), usize>::new();
        for i in 0..r.len() {
            if r[i] == l && vert(p[i]) && p[i] != l && !in_front(i) {
                let w = world(i);
                let key = (
                    ((w.x - mid_x).abs() / 3.0) as i64 * 3,
                    ((w.y - front[i / (nx * ny)]) / 5.0) as i64 * 5,
                );
                *bins.entry(key).or_default() += 1;
            }
        }
        println!("  behind the canal, (|x| mm, depth mm): {bins:?}");
        println!(
            "  body S extent (2/50/98 %): reference {:.0} {:.0} {:.0}, predicted {:.0} {:.0} {:.0} mm",
            quantile(&zr, 0.02),
            quantile(&zr, 0.5),
            quantile(&zr, 0.98),
            quantile(&zp, 0.02),
            quantile(&zp, 0.5),
            quantile(&zp, 0.98)
        );
    }
    // The outline's ceiling: every predicted vertebra voxel on the reference bone, and every
    // one of a level the reference has within 15 mm of it, given its nearest reference
    // vertebra's label (a perfect separation of our outline).
    let ceiling: Vec<String> = levels
        .iter()
        .map(|&l| {
            let (mut nr, mut np, mut both) = (0usize, 0usize, 0usize);
            for i in 0..r.len() {
                let a = r[i] == l;
                let b = src[i] == l
                    && (vert(r[i]) && vert(p[i]) || levels.contains(&p[i]) && dist[i] <= 15.0);
                nr += a as usize;
                np += b as usize;
                both += (a && b) as usize;
            }
            format!("{l} {:.3}", 2.0 * both as f64 / (nr + np).max(1) as f64)
        })
        .collect();
    println!(
        "outline ceiling (perfect separation): {}",
        ceiling.join(", ")
    );
    // Error map: 1 missed (green), 2 extra (purple), 3 wrong level (yellow) in the label colours.
    let err: Vec<u16> = r
        .iter()
        .zip(p)
        .map(|(&a, &b)| match (vert(a), vert(b)) {
            (true, false) => 1,
            (false, true) => 2,
            (true, true) if a != b => 3,
            _ => 0,
        })
        .collect();
    let views = [
        ("ct", Volume::new(g.clone(), vec![0u16; r.len()])?),
        ("ref", reference.clone()),
        ("pred", seg.labels.clone()),
        ("err", Volume::new(g.clone(), err)?),
    ];
    let mid = g.index_to_world(Vector3::new(
        nx as f64 / 2.0,
        ny as f64 / 2.0,
        nz as f64 / 2.0,
    ));
    for (name, lab) in &views {
        for dx in [-12.0, -6.0, 0.0, 6.0, 12.0] {
            let at = mid + Vector3::new(dx, 0.0, 0.0);
            render_slice(&ct, Plane::Sagittal, at, Window::BONE, Some(lab))
                .enlarged(3)
                .write_png(&out.join(format!("sag{dx:+.0}_{name}.png")))?;
        }
    }
    if let Ok(is) = std::env::var("SAGITTAL_I") {
        for i in is.split(',').filter_map(|s| s.parse::<usize>().ok()) {
            let at = g.index_to_world(Vector3::new(i as f64, 0.0, 0.0));
            for (name, lab) in &views {
                render_slice(&ct, Plane::Sagittal, at, Window::BONE, Some(lab))
                    .enlarged(3)
                    .write_png(&out.join(format!("sagi{i}_{name}.png")))?;
            }
        }
    }
    if let Ok(ks) = std::env::var("AXIAL_K") {
        for k in ks.split(',').filter_map(|s| s.parse::<usize>().ok()) {
            let at = g.index_to_world(Vector3::new(0.0, 0.0, k as f64));
            for (name, lab) in &views {
                render_slice(&ct, Plane::Axial, at, Window::BONE, Some(lab))
                    .enlarged(3)
                    .write_png(&out.join(format!("ax{k}_{name}.png")))?;
            }
        }
    }
    println!("previews in {}", out.display());
    Ok(())
}
