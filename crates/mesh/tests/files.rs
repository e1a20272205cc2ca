//! Writers round-trip: STL, PLY and OBJ read back; GLB parsed by the `gltf` crate.

use nalgebra::Vector3;
use spinetwin_imaging::{Grid, Volume};
use spinetwin_mesh::io::{
    glb_bytes, read_obj, read_ply, read_stl, write_glb, GlbStructure, MeshFormat,
};
use spinetwin_mesh::{check, extract_label, taubin, SurfaceMesh, TaubinParams};

/// A smoothed ball and a smoothed box, away from the origin (patient coordinates).
fn shapes() -> (SurfaceMesh, SurfaceMesh) {
    let grid = Grid::axis_aligned(
        [24, 24, 24],
        [0.8, 0.8, 1.2],
        Vector3::new(-30.0, 80.0, 400.0),
    )
    .unwrap();
    let g = grid.clone();
    let c = Vector3::new(-20.0, 90.0, 414.0);
    let vol = Volume::from_fn(grid, move |i, j, k| {
        let p = g.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
        if (p - c).norm() <= 6.0 {
            1u16
        } else if i > 16 && j > 14 && k > 15 {
            2
        } else {
            0
        }
    });
    let mut a = extract_label(&vol, 1).unwrap();
    let mut b = extract_label(&vol, 2).unwrap();
    taubin(&mut a, &TaubinParams::default());
    taubin(&mut b, &TaubinParams::default());
    (a, b)
}

fn same_surface(a: &SurfaceMesh, b: &SurfaceMesh, tol: f64) {
    assert_eq!(a.triangles.len(), b.triangles.len());
    assert_eq!(a.vertices.len(), b.vertices.len());
    let ra = check(a, false);
    let rb = check(b, false);
    assert!(rb.closed && rb.manifold && rb.oriented, "{rb:?}");
    assert!((ra.volume - rb.volume).abs() < 1e-4 * ra.volume);
    for t in 0..a.triangles.len() {
        let (ca, cb) = (a.corners(t), b.corners(t));
        for k in 0..3 {
            for d in 0..3 {
                assert!((ca[k][d] - cb[k][d]).abs() < tol, "{:?} vs {:?}", ca, cb);
            }
        }
    }
}

#[test]
fn stl_ply_obj_round_trip() {
    let (m, _) = shapes();
    let dir = tempfile::tempdir().unwrap();
    for (fmt, tol) in [
        (MeshFormat::Stl, 1e-4),
        (MeshFormat::Ply, 1e-4),
        (MeshFormat::Obj, 1e-4),
    ] {
        let p = dir.path().join(format!("ball.{}", fmt.extension()));
        fmt.write(&p, &m, "ball").unwrap();
        let back = match fmt {
            MeshFormat::Stl => read_stl(&p),
            MeshFormat::Ply => read_ply(&p),
            MeshFormat::Obj => read_obj(&p),
        }
        .unwrap();
        same_surface(&m, &back, tol);
    }
    // STL is exactly 84 + 50 bytes per triangle; no temporary files are left behind.
    let stl = std::fs::metadata(dir.path().join("ball.stl"))
        .unwrap()
        .len();
    assert_eq!(stl, 84 + 50 * m.triangles.len() as u64);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn glb_has_one_named_node_per_structure_and_reads_back() {
    let (a, b) = shapes();
    let structs = [
        GlbStructure {
            name: "L4",
            mesh: &a,
            color: [0.9, 0.85, 0.7, 1.0],
        },
        GlbStructure {
            name: "L4-L5",
            mesh: &b,
            color: [0.4, 0.6, 0.9, 1.0],
        },
    ];
    let bytes = glb_bytes(&structs);
    assert_eq!(&bytes[0..4], b"glTF");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
        bytes.len()
    );
    assert_eq!(bytes.len() % 4, 0);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spine.glb");
    write_glb(&path, &structs).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // Parsed and validated by the gltf crate.
    let gltf = gltf::Gltf::from_slice(&bytes).expect("valid glTF 2.0 binary");
    let blob = gltf.blob.as_deref().expect("BIN chunk");
    let doc = &gltf.document;
    assert_eq!(doc.meshes().count(), 2);
    let scene = doc.default_scene().unwrap();
    let root = scene.nodes().next().unwrap();
    let children: Vec<_> = root.children().collect();
    assert_eq!(
        children
            .iter()
            .map(|n| n.name().unwrap())
            .collect::<Vec<_>>(),
        ["L4", "L4-L5"]
    );
    for (node, m) in children.iter().zip([&a, &b]) {
        let mesh = node.mesh().unwrap();
        assert_eq!(mesh.name(), node.name());
        let prim = mesh.primitives().next().unwrap();
        let reader = prim.reader(|_| Some(blob));
        let pos: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
        let idx: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
        let nrm: Vec<[f32; 3]> = reader.read_normals().unwrap().collect();
        assert_eq!(pos.len(), m.vertices.len());
        assert_eq!(nrm.len(), m.vertices.len());
        assert_eq!(idx.len(), 3 * m.triangles.len());
        for (p, q) in pos.iter().zip(&m.vertices) {
            for k in 0..3 {
                assert!((p[k] as f64 - q[k]).abs() < 1e-3, "patient mm kept");
            }
        }
        let flat: Vec<u32> = m.triangles.iter().flatten().copied().collect();
        assert_eq!(idx, flat);
        let bb = prim.bounding_box();
        let (lo, hi) = m.bounds();
        for k in 0..3 {
            assert!((bb.min[k] as f64 - lo[k]).abs() < 1e-3);
            assert!((bb.max[k] as f64 - hi[k]).abs() < 1e-3);
        }
    }
}
