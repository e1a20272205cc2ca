//! Surface files, all in patient LPS millimetres and written atomically
//! (`spinetwin_core::atomic`): binary STL, binary PLY, Wavefront OBJ, and glTF 2.0 binary
//! (GLB) with one named node and mesh per structure.
//!
//! Readers for STL, PLY and OBJ read back what the writers produce (and the common variants
//! of those formats other tools write); they exist for round-trip tests and for loading
//! edited surfaces. A new format: a `write_*` here, one line in [`MeshFormat`].

use crate::{MeshError, SurfaceMesh};
use serde_json::json;
use spinetwin_core::atomic::write_file;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;

/// A single-surface file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshFormat {
    /// Binary STL.
    Stl,
    /// Binary little-endian PLY.
    Ply,
    /// Wavefront OBJ.
    Obj,
}

impl MeshFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            MeshFormat::Stl => "stl",
            MeshFormat::Ply => "ply",
            MeshFormat::Obj => "obj",
        }
    }

    /// Writes `mesh` (named `name` where the format has a place for it) to `path`.
    pub fn write(self, path: &Path, mesh: &SurfaceMesh, name: &str) -> Result<(), MeshError> {
        match self {
            MeshFormat::Stl => write_stl(path, mesh, name),
            MeshFormat::Ply => write_ply(path, mesh, name),
            MeshFormat::Obj => write_obj(path, mesh, name),
        }
    }
}

impl std::str::FromStr for MeshFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "stl" => Ok(MeshFormat::Stl),
            "ply" => Ok(MeshFormat::Ply),
            "obj" => Ok(MeshFormat::Obj),
            _ => Err(format!("unknown mesh format {s:?}; use stl, ply or obj")),
        }
    }
}

fn f32s(w: &mut dyn Write, v: [f64; 3]) -> io::Result<()> {
    for x in v {
        w.write_all(&(x as f32).to_le_bytes())?;
    }
    Ok(())
}

/// Binary STL (facet normals from the triangle orientation; header names the structure and
/// says the units and frame).
pub fn write_stl(path: &Path, mesh: &SurfaceMesh, name: &str) -> Result<(), MeshError> {
    write_file(path, |w| {
        let mut header = [b' '; 80];
        let text = format!("spinetwin {name} patient LPS mm");
        let n = text.len().min(80);
        header[..n].copy_from_slice(&text.as_bytes()[..n]);
        w.write_all(&header)?;
        w.write_all(&(mesh.triangles.len() as u32).to_le_bytes())?;
        for t in 0..mesh.triangles.len() {
            let [a, b, c] = mesh.corners(t);
            let nrm = crate::cross(crate::sub(b, a), crate::sub(c, a));
            let l = crate::norm(nrm);
            f32s(
                w,
                if l > 0.0 {
                    nrm.map(|x| x / l)
                } else {
                    [0.0; 3]
                },
            )?;
            for p in [a, b, c] {
                f32s(w, p)?;
            }
            w.write_all(&[0, 0])?;
        }
        Ok(())
    })?;
    Ok(())
}

fn read_err(path: &Path, msg: impl Into<String>) -> MeshError {
    MeshError::Read {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_all(path: &Path) -> Result<Vec<u8>, MeshError> {
    std::fs::read(path).map_err(|e| read_err(path, format!("cannot read the file ({e})")))
}

/// Reads a binary STL, merging corners with identical coordinates into shared vertices.
pub fn read_stl(path: &Path) -> Result<SurfaceMesh, MeshError> {
    let b = read_all(path)?;
    if b.len() < 84 {
        return Err(read_err(path, "too short for a binary STL"));
    }
    let n = u32::from_le_bytes(b[80..84].try_into().unwrap()) as usize;
    if b.len() < 84 + 50 * n {
        return Err(read_err(
            path,
            format!("binary STL announces {n} triangles but is truncated (ASCII STL is not read)"),
        ));
    }
    let mut index: HashMap<[u32; 3], u32> = HashMap::new();
    let mut mesh = SurfaceMesh::default();
    for t in 0..n {
        let rec = &b[84 + 50 * t..84 + 50 * (t + 1)];
        let mut tri = [0u32; 3];
        for (c, v) in tri.iter_mut().enumerate() {
            let off = 12 + 12 * c;
            let bits: [u32; 3] = std::array::from_fn(|k| {
                u32::from_le_bytes(rec[off + 4 * k..off + 4 * k + 4].try_into().unwrap())
            });
            *v = *index.entry(bits).or_insert_with(|| {
                mesh.vertices.push(bits.map(|x| f32::from_bits(x) as f64));
                (mesh.vertices.len() - 1) as u32
            });
        }
        mesh.triangles.push(tri);
    }
    Ok(mesh)
}

/// Binary little-endian PLY: `float x, y, z` per vertex, `list uchar int vertex_indices`
/// per face.
pub fn write_ply(path: &Path, mesh: &SurfaceMesh, name: &str) -> Result<(), MeshError> {
    write_file(path, |w| {
        write!(
            w,
            "ply\nformat binary_little_endian 1.0\ncomment spinetwin {name}\n\
             comment patient LPS, mm\nelement vertex {}\nproperty float x\nproperty float y\n\
             property float z\nelement face {}\nproperty list uchar int vertex_indices\nend_header\n",
            mesh.vertices.len(),
            mesh.triangles.len()
        )?;
        for &p in &mesh.vertices {
            f32s(w, p)?;
        }
        for t in &mesh.triangles {
            w.write_all(&[3u8])?;
            for &v in t {
                w.write_all(&(v as i32).to_le_bytes())?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Reads a binary little-endian PLY with float or double `x, y, z` vertex properties (other
/// vertex properties skipped) and triangle faces.
pub fn read_ply(path: &Path) -> Result<SurfaceMesh, MeshError> {
    let b = read_all(path)?;
    let end = b
        .windows(11)
        .position(|w| w == b"end_header\n")
        .ok_or_else(|| read_err(path, "no PLY header (end_header missing)"))?;
    let header =
        std::str::from_utf8(&b[..end]).map_err(|_| read_err(path, "PLY header is not text"))?;
    if !header.contains("format binary_little_endian") {
        return Err(read_err(path, "only binary little-endian PLY is read"));
    }
    let (mut nv, mut nf) = (0usize, 0usize);
    let mut element = "";
    let mut vprops: Vec<(String, usize)> = Vec::new(); // name, byte size
    let mut face_types = ("uchar", "int");
    let size = |t: &str| match t {
        "char" | "uchar" | "int8" | "uint8" => 1,
        "short" | "ushort" | "int16" | "uint16" => 2,
        "int" | "uint" | "float" | "int32" | "uint32" | "float32" => 4,
        "double" | "float64" => 8,
        _ => 0,
    };
    for line in header.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["element", "vertex", n] => {
                element = "vertex";
                nv = n.parse().map_err(|_| read_err(path, "bad vertex count"))?;
            }
            ["element", "face", n] => {
                element = "face";
                nf = n.parse().map_err(|_| read_err(path, "bad face count"))?;
            }
            ["element", ..] => element = "other",
            ["property", "list", ct, it, _] if element == "face" => face_types = (ct, it),
            ["property", t, name] if element == "vertex" => {
                vprops.push((name.to_string(), size(t)))
            }
            _ => {}
        }
    }
    let stride: usize = vprops.iter().map(|p| p.1).sum();
    let mut off = end + 11;
    let mut mesh = SurfaceMesh::default();
    let need = |off: usize, n: usize| {
        if off + n > b.len() {
            Err(read_err(path, "PLY data is truncated"))
        } else {
            Ok(())
        }
    };
    let num = |bytes: &[u8]| -> f64 {
        match bytes.len() {
            1 => bytes[0] as f64,
            2 => u16::from_le_bytes(bytes.try_into().unwrap()) as f64,
            4 => f32::from_le_bytes(bytes.try_into().unwrap()) as f64,
            _ => f64::from_le_bytes(bytes.try_into().unwrap()),
        }
    };
    for _ in 0..nv {
        need(off, stride)?;
        let mut p = [0.0; 3];
        let mut o = off;
        for (name, s) in &vprops {
            let k = match name.as_str() {
                "x" => Some(0),
                "y" => Some(1),
                "z" => Some(2),
                _ => None,
            };
            if let Some(k) = k {
                p[k] = num(&b[o..o + s]);
            }
            o += s;
        }
        mesh.vertices.push(p);
        off += stride;
    }
    let (cs, is) = (size(face_types.0), size(face_types.1));
    for _ in 0..nf {
        need(off, cs)?;
        let n = b[off] as usize;
        off += cs;
        need(off, n * is)?;
        if n != 3 || is != 4 {
            return Err(read_err(
                path,
                "only triangle faces with int indices are read",
            ));
        }
        let t: [u32; 3] = std::array::from_fn(|k| {
            u32::from_le_bytes(b[off + 4 * k..off + 4 * k + 4].try_into().unwrap())
        });
        mesh.triangles.push(t);
        off += 12;
    }
    Ok(mesh)
}

/// Wavefront OBJ (`v` lines in mm with 0.1 um resolution, `f` lines, one object named
/// `name`).
pub fn write_obj(path: &Path, mesh: &SurfaceMesh, name: &str) -> Result<(), MeshError> {
    write_file(path, |w| {
        writeln!(w, "# spinetwin surface, patient LPS, mm")?;
        writeln!(w, "o {name}")?;
        for p in &mesh.vertices {
            writeln!(w, "v {:.4} {:.4} {:.4}", p[0], p[1], p[2])?;
        }
        for t in &mesh.triangles {
            writeln!(w, "f {} {} {}", t[0] + 1, t[1] + 1, t[2] + 1)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Reads the vertices and faces of an OBJ (polygons fanned into triangles; texture and
/// normal indices ignored; negative indices resolved).
pub fn read_obj(path: &Path) -> Result<SurfaceMesh, MeshError> {
    let b = read_all(path)?;
    let text = String::from_utf8_lossy(&b);
    let mut mesh = SurfaceMesh::default();
    for (ln, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let bad = || read_err(path, format!("line {}: cannot read {line:?}", ln + 1));
        match f.next() {
            Some("v") => {
                let p: Vec<f64> = f
                    .take(3)
                    .map(|x| x.parse().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
                if p.len() != 3 {
                    return Err(bad());
                }
                mesh.vertices.push([p[0], p[1], p[2]]);
            }
            Some("f") => {
                let idx: Vec<u32> = f
                    .map(|x| {
                        let i: i64 = x
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .parse()
                            .map_err(|_| bad())?;
                        let n = mesh.vertices.len() as i64;
                        let i = if i < 0 { n + i } else { i - 1 };
                        if i < 0 || i >= n {
                            return Err(bad());
                        }
                        Ok(i as u32)
                    })
                    .collect::<Result<_, _>>()?;
                if idx.len() < 3 {
                    return Err(bad());
                }
                for k in 1..idx.len() - 1 {
                    mesh.triangles.push([idx[0], idx[k], idx[k + 1]]);
                }
            }
            _ => {}
        }
    }
    Ok(mesh)
}

/// One structure of a GLB file.
#[derive(Debug, Clone, Copy)]
pub struct GlbStructure<'a> {
    /// Node and mesh name (e.g. "L4").
    pub name: &'a str,
    /// The surface, patient LPS mm.
    pub mesh: &'a SurfaceMesh,
    /// Base colour, linear RGBA.
    pub color: [f32; 4],
}

/// The matrix of the GLB root node: patient LPS mm to glTF's frame (metres, +Y up = superior,
/// +Z = anterior, +X = patient left), column-major. Vertex data stay in LPS mm.
pub const LPS_MM_TO_GLTF: [f64; 16] = [
    0.001, 0.0, 0.0, 0.0, //
    0.0, 0.0, -0.001, 0.0, //
    0.0, 0.001, 0.0, 0.0, //
    0.0, 0.0, 0.0, 1.0,
];

/// Builds a glTF 2.0 binary container: per structure one mesh (POSITION and NORMAL as float
/// VEC3, with min/max; u32 indices), one material and one node named after it, all children
/// of a root node "patient LPS mm" whose matrix ([`LPS_MM_TO_GLTF`]) shows the scene upright
/// at true size in any glTF viewer.
pub fn glb_bytes(structures: &[GlbStructure<'_>]) -> Vec<u8> {
    let mut bin: Vec<u8> = Vec::new();
    let mut views = Vec::new();
    let mut accessors = Vec::new();
    let mut meshes = Vec::new();
    let mut materials = Vec::new();
    let mut nodes = vec![json!(null)]; // root, filled in below
    let align = |bin: &mut Vec<u8>| {
        while !bin.len().is_multiple_of(4) {
            bin.push(0);
        }
    };
    for (s, st) in structures.iter().enumerate() {
        let m = st.mesh;
        let normals = m.vertex_normals();
        let mut view = |bin: &mut Vec<u8>, bytes: &[u8], target: u32| {
            align(bin);
            views.push(json!({"buffer": 0, "byteOffset": bin.len(), "byteLength": bytes.len(), "target": target}));
            bin.extend_from_slice(bytes);
            views.len() - 1
        };
        let mut pos = Vec::with_capacity(12 * m.vertices.len());
        let (mut lo, mut hi) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
        for p in &m.vertices {
            for k in 0..3 {
                let x = p[k] as f32;
                lo[k] = lo[k].min(x);
                hi[k] = hi[k].max(x);
                pos.extend_from_slice(&x.to_le_bytes());
            }
        }
        let mut nrm = Vec::with_capacity(12 * m.vertices.len());
        for n in &normals {
            for x in n {
                nrm.extend_from_slice(&(*x as f32).to_le_bytes());
            }
        }
        let mut idx = Vec::with_capacity(12 * m.triangles.len());
        for t in m.triangles.iter().flatten() {
            idx.extend_from_slice(&t.to_le_bytes());
        }
        let vp = view(&mut bin, &pos, 34962);
        let vn = view(&mut bin, &nrm, 34962);
        let vi = view(&mut bin, &idx, 34963);
        let a0 = accessors.len();
        accessors.push(
            json!({"bufferView": vp, "componentType": 5126, "count": m.vertices.len(),
            "type": "VEC3", "min": lo, "max": hi}),
        );
        accessors.push(
            json!({"bufferView": vn, "componentType": 5126, "count": m.vertices.len(),
            "type": "VEC3"}),
        );
        accessors.push(json!({"bufferView": vi, "componentType": 5125,
            "count": 3 * m.triangles.len(), "type": "SCALAR"}));
        materials.push(json!({"name": st.name, "pbrMetallicRoughness": {
            "baseColorFactor": st.color, "metallicFactor": 0.0, "roughnessFactor": 0.7}}));
        meshes.push(json!({"name": st.name, "primitives": [{
            "attributes": {"POSITION": a0, "NORMAL": a0 + 1}, "indices": a0 + 2,
            "material": s, "mode": 4}]}));
        nodes.push(json!({"name": st.name, "mesh": s}));
    }
    align(&mut bin);
    nodes[0] = json!({"name": "patient LPS mm", "matrix": LPS_MM_TO_GLTF});
    if !structures.is_empty() {
        nodes[0]["children"] = json!((1..=structures.len()).collect::<Vec<_>>());
    }
    let mut doc = json!({
        "asset": {"version": "2.0", "generator": "spinetwin"},
        "scene": 0,
        "scenes": [{"name": "spinetwin", "nodes": [0]}],
        "nodes": nodes,
    });
    if !structures.is_empty() {
        doc["meshes"] = json!(meshes);
        doc["materials"] = json!(materials);
        doc["accessors"] = json!(accessors);
        doc["bufferViews"] = json!(views);
        doc["buffers"] = json!([{"byteLength": bin.len()}]);
    }
    let mut js = serde_json::to_vec(&doc).expect("glTF JSON serialises");
    while !js.len().is_multiple_of(4) {
        js.push(b' ');
    }
    let with_bin = !bin.is_empty();
    let total = 12 + 8 + js.len() + if with_bin { 8 + bin.len() } else { 0 };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(js.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&js);
    if with_bin {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(b"BIN\0");
        out.extend_from_slice(&bin);
    }
    out
}

/// Writes [`glb_bytes`] to `path` atomically.
pub fn write_glb(path: &Path, structures: &[GlbStructure<'_>]) -> Result<(), MeshError> {
    spinetwin_core::atomic::write_bytes(path, &glb_bytes(structures))?;
    Ok(())
}
