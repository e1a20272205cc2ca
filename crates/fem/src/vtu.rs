//! VTU output (VTK XML UnstructuredGrid, ASCII), written atomically.
//!
//! Cell types: 10 = `VTK_TETRA`, 24 = `VTK_QUADRATIC_TETRA`. VTK orders the mid-edge nodes of
//! a quadratic tetra as edges (0,1), (1,2), (2,0), (0,3), (1,3), (2,3) (vtkQuadraticTetra
//! documentation), which is the same as Abaqus/CalculiX C3D10 (5: 1-2, 6: 2-3, 7: 3-1,
//! 8: 1-4, 9: 2-4, 10: 3-4), so [`VTK_TET10_ORDER`] is the identity. (Gmsh's 10-node tet is
//! the one that differs: it swaps the last two mid-edge nodes.)
//!
//! 12 = `VTK_HEXAHEDRON` has the same order as C3D8 (bottom face 0-3, then the top face).
//! 13 = `VTK_WEDGE`: the normal of VTK's triangle 0-1-2 points AWAY from triangle 3-4-5
//! (VTK file-format document; the meshio gmsh<->VTK converter swaps nodes for this reason),
//! while that of C3D6's 1-2-3 points towards 4-5-6, so [`VTK_WEDGE6_ORDER`] reverses both
//! triangles. 3 = `VTK_LINE` for two-point segments ([`lines_vtu_string`]), 5 = `VTK_TRIANGLE`
//! for surfaces ([`triangles_vtu_string`]).

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::element::ElementKind;
use crate::mesh::Mesh;
use crate::FemError;

/// `vtk_node[i] = our_node[VTK_TET10_ORDER[i]]` for a Tet10 element.
pub const VTK_TET10_ORDER: [usize; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// `vtk_node[i] = our_node[VTK_WEDGE6_ORDER[i]]` for a Wedge6 element.
pub const VTK_WEDGE6_ORDER: [usize; 6] = [0, 2, 1, 3, 5, 4];

/// Fields to write with a mesh.
#[derive(Clone, Debug, Default)]
pub struct VtuData {
    /// Point vectors, e.g. `("displacement", u)`.
    pub point_vectors: Vec<(String, Vec<[f64; 3]>)>,
    /// Point scalars, e.g. `("contact_pressure", p)`.
    pub point_scalars: Vec<(String, Vec<f64>)>,
    /// Cell scalars, e.g. `("von_mises", v)`.
    pub cell_scalars: Vec<(String, Vec<f64>)>,
    /// Cell vectors, e.g. `("fibre_1", a)` (a material direction per element).
    pub cell_vectors: Vec<(String, Vec<[f64; 3]>)>,
    /// Cell symmetric tensors in our Voigt order `[xx, yy, zz, xy, xz, yz]` with tensor
    /// (not engineering) shear components; written in VTK's order `[xx, yy, zz, xy, yz, xz]`.
    /// Convert strains with [`tensor_shear`].
    pub cell_tensors: Vec<(String, Vec<[f64; 6]>)>,
}

impl VtuData {
    /// The fields of a linear solve: point `displacement` (mm); per element `von_mises`
    /// (MPa), `stress` (MPa) and the small strain `strain` (tensor components), the
    /// volume averages of [`crate::post::element_results`].
    pub fn linear_result(u: &[[f64; 3]], results: &[crate::post::ElementResult]) -> VtuData {
        VtuData {
            point_vectors: vec![("displacement".into(), u.to_vec())],
            point_scalars: vec![],
            cell_scalars: vec![(
                "von_mises".into(),
                results.iter().map(|r| r.von_mises).collect(),
            )],
            cell_vectors: vec![],
            cell_tensors: vec![
                ("stress".into(), results.iter().map(|r| r.stress).collect()),
                (
                    "strain".into(),
                    results.iter().map(|r| tensor_shear(&r.strain)).collect(),
                ),
            ],
        }
    }
}

/// A Voigt strain with engineering shear (`gamma_xy = 2 eps_xy`, as the engine computes
/// strains) as tensor components, which VTK tensors hold (so ParaView's eigenvalues and
/// invariants are right).
pub fn tensor_shear(e: &[f64; 6]) -> [f64; 6] {
    [e[0], e[1], e[2], 0.5 * e[3], 0.5 * e[4], 0.5 * e[5]]
}

/// Node indices of element `e` in VTK order.
pub fn vtk_connectivity(mesh: &Mesh, e: usize) -> Vec<usize> {
    let nodes = mesh.element_nodes(e);
    match mesh.kinds[e] {
        ElementKind::Tet4 | ElementKind::Hex8 => nodes.to_vec(),
        ElementKind::Wedge6 => VTK_WEDGE6_ORDER.iter().map(|&i| nodes[i]).collect(),
        ElementKind::Tet10 => VTK_TET10_ORDER.iter().map(|&i| nodes[i]).collect(),
    }
}

/// The VTU document as a string. The mesh is validated; field lengths must match it.
pub fn vtu_string(mesh: &Mesh, data: &VtuData) -> Result<String, FemError> {
    mesh.validate()?;
    let (nn, ne) = (mesh.num_nodes(), mesh.num_elements());
    for (name, v) in &data.point_vectors {
        check_len(name, v.len(), nn, "nodes")?;
    }
    for (name, v) in &data.point_scalars {
        check_len(name, v.len(), nn, "nodes")?;
    }
    for (name, v) in &data.cell_scalars {
        check_len(name, v.len(), ne, "elements")?;
    }
    for (name, v) in &data.cell_vectors {
        check_len(name, v.len(), ne, "elements")?;
    }
    for (name, v) in &data.cell_tensors {
        check_len(name, v.len(), ne, "elements")?;
    }
    let mut s = String::new();
    let w = &mut s;
    piece_start(w, nn, ne);
    let _ = writeln!(w, "<PointData>");
    for (name, v) in &data.point_vectors {
        data_array(w, "Float64", Some(name), 3, v.iter().map(|p| p.to_vec()));
    }
    for (name, v) in &data.point_scalars {
        data_array(w, "Float64", Some(name), 1, v.iter().map(|x| [*x]));
    }
    let _ = writeln!(w, "</PointData>");
    let _ = writeln!(w, "<CellData>");
    for (name, v) in &data.cell_scalars {
        data_array(w, "Float64", Some(name), 1, v.iter().map(|x| [*x]));
    }
    for (name, v) in &data.cell_vectors {
        data_array(w, "Float64", Some(name), 3, v.iter().map(|p| p.to_vec()));
    }
    for (name, v) in &data.cell_tensors {
        // Voigt [xx, yy, zz, xy, xz, yz] -> VTK's symmetric order [xx, yy, zz, xy, yz, xz].
        let rows = v.iter().map(|t| [t[0], t[1], t[2], t[3], t[5], t[4]]);
        data_array(w, "Float64", Some(name), 6, rows);
    }
    let _ = writeln!(w, "</CellData>");
    let _ = writeln!(w, "<Points>");
    data_array(w, "Float64", None, 3, mesh.nodes.iter().map(|p| p.to_vec()));
    let _ = writeln!(w, "</Points>");
    let _ = writeln!(w, "<Cells>");
    let conn = (0..ne).map(|e| vtk_connectivity(mesh, e));
    data_array(w, "Int64", Some("connectivity"), 0, conn);
    let offsets = mesh.offsets[1..=ne].iter().map(|o| [*o]);
    data_array(w, "Int64", Some("offsets"), 0, offsets);
    let types = mesh.kinds.iter().map(|k| [k.vtk_cell_type()]);
    data_array(w, "UInt8", Some("types"), 0, types);
    piece_end(w);
    Ok(s)
}

/// Writes the VTU file atomically (temporary file + rename).
pub fn write_vtu(path: &Path, mesh: &Mesh, data: &VtuData) -> Result<(), FemError> {
    let s = vtu_string(mesh, data)?;
    spinetwin_core::atomic::write_file(path, |w: &mut dyn Write| w.write_all(s.as_bytes()))?;
    Ok(())
}

/// A VTU document of straight two-point segments (`VTK_LINE`, cell type 3), e.g. springs or
/// ligament fibres: `points` (mm), `lines` as pairs of point indices, and one value per line
/// for each of `cell_scalars`.
pub fn lines_vtu_string(
    points: &[[f64; 3]],
    lines: &[[usize; 2]],
    cell_scalars: &[(String, Vec<f64>)],
) -> Result<String, FemError> {
    cells_vtu_string(points, lines, 3, &[], cell_scalars)
}

/// Writes [`lines_vtu_string`] atomically.
pub fn write_lines_vtu(
    path: &Path,
    points: &[[f64; 3]],
    lines: &[[usize; 2]],
    cell_scalars: &[(String, Vec<f64>)],
) -> Result<(), FemError> {
    let s = lines_vtu_string(points, lines, cell_scalars)?;
    spinetwin_core::atomic::write_file(path, |w: &mut dyn Write| w.write_all(s.as_bytes()))?;
    Ok(())
}

/// A VTU document of a triangulated surface (`VTK_TRIANGLE`, cell type 5), e.g. a contact
/// surface coloured by its pressure: `points` (mm), `triangles` as point indices, one value
/// per point for each of `point_scalars` and per triangle for each of `cell_scalars`.
pub fn triangles_vtu_string(
    points: &[[f64; 3]],
    triangles: &[[usize; 3]],
    point_scalars: &[(String, Vec<f64>)],
    cell_scalars: &[(String, Vec<f64>)],
) -> Result<String, FemError> {
    cells_vtu_string(points, triangles, 5, point_scalars, cell_scalars)
}

/// Writes [`triangles_vtu_string`] atomically.
pub fn write_triangles_vtu(
    path: &Path,
    points: &[[f64; 3]],
    triangles: &[[usize; 3]],
    point_scalars: &[(String, Vec<f64>)],
    cell_scalars: &[(String, Vec<f64>)],
) -> Result<(), FemError> {
    let s = triangles_vtu_string(points, triangles, point_scalars, cell_scalars)?;
    spinetwin_core::atomic::write_file(path, |w: &mut dyn Write| w.write_all(s.as_bytes()))?;
    Ok(())
}

/// Cells of `N` points each, all of VTK type `vtk_type`; a cell naming a missing point, a
/// coordinate that is not finite or a field of the wrong length is an error, not a broken
/// file.
fn cells_vtu_string<const N: usize>(
    points: &[[f64; 3]],
    cells: &[[usize; N]],
    vtk_type: u8,
    point_scalars: &[(String, Vec<f64>)],
    cell_scalars: &[(String, Vec<f64>)],
) -> Result<String, FemError> {
    let (nn, ne) = (points.len(), cells.len());
    if let Some(c) = cells.iter().find(|c| c.iter().any(|&i| i >= nn)) {
        return Err(FemError::InvalidInput(format!(
            "VTU cell {c:?} refers to a point beyond the {nn} given"
        )));
    }
    if points.iter().flatten().any(|v| !v.is_finite()) {
        return Err(FemError::InvalidInput(
            "VTU: a point coordinate is not finite".into(),
        ));
    }
    for (name, v) in point_scalars {
        check_len(name, v.len(), nn, "points")?;
    }
    for (name, v) in cell_scalars {
        check_len(name, v.len(), ne, "cells")?;
    }
    let mut s = String::new();
    let w = &mut s;
    piece_start(w, nn, ne);
    let _ = writeln!(w, "<PointData>");
    for (name, v) in point_scalars {
        data_array(w, "Float64", Some(name), 1, v.iter().map(|x| [*x]));
    }
    let _ = writeln!(w, "</PointData>");
    let _ = writeln!(w, "<CellData>");
    for (name, v) in cell_scalars {
        data_array(w, "Float64", Some(name), 1, v.iter().map(|x| [*x]));
    }
    let _ = writeln!(w, "</CellData>");
    let _ = writeln!(w, "<Points>");
    data_array(w, "Float64", None, 3, points.iter().map(|p| p.to_vec()));
    let _ = writeln!(w, "</Points>");
    let _ = writeln!(w, "<Cells>");
    data_array(
        w,
        "Int64",
        Some("connectivity"),
        0,
        cells.iter().map(|c| c.to_vec()),
    );
    data_array(w, "Int64", Some("offsets"), 0, (1..=ne).map(|i| [N * i]));
    data_array(w, "UInt8", Some("types"), 0, (0..ne).map(|_| [vtk_type]));
    piece_end(w);
    Ok(s)
}

/// The document's opening up to the `<Piece>` of `nn` points and `ne` cells. Writing into
/// a String cannot fail, so the results are ignored here and below.
fn piece_start(w: &mut String, nn: usize, ne: usize) {
    let _ = writeln!(w, r#"<?xml version="1.0"?>"#);
    let _ = writeln!(
        w,
        r#"<VTKFile type="UnstructuredGrid" version="1.0" byte_order="LittleEndian" header_type="UInt64">"#
    );
    let _ = writeln!(w, "<UnstructuredGrid>");
    let _ = writeln!(w, r#"<Piece NumberOfPoints="{nn}" NumberOfCells="{ne}">"#);
}

/// Closes what [`piece_start`] opened, after the `<Cells>`.
fn piece_end(w: &mut String) {
    let _ = writeln!(w, "</Cells>");
    let _ = writeln!(w, "</Piece>");
    let _ = writeln!(w, "</UnstructuredGrid>");
    let _ = writeln!(w, "</VTKFile>");
}

/// One ASCII `<DataArray>` with a line per row. `ncomp` > 0 writes NumberOfComponents.
/// `Display` prints floats in their shortest round-tripping form, so nothing is lost.
fn data_array<I, R>(w: &mut String, ty: &str, name: Option<&str>, ncomp: usize, rows: I)
where
    I: IntoIterator<Item = R>,
    R: IntoIterator,
    R::Item: std::fmt::Display,
{
    let _ = write!(w, r#"<DataArray type="{ty}""#);
    if let Some(n) = name {
        let _ = write!(w, r#" Name="{}""#, xml_escape(n));
    }
    if ncomp > 0 {
        let _ = write!(w, r#" NumberOfComponents="{ncomp}""#);
    }
    let _ = writeln!(w, r#" format="ascii">"#);
    for row in rows {
        let mut first = true;
        for v in row {
            let _ = write!(w, "{}{v}", if first { "" } else { " " });
            first = false;
        }
        w.push('\n');
    }
    let _ = writeln!(w, "</DataArray>");
}

fn check_len(name: &str, got: usize, want: usize, what: &str) -> Result<(), FemError> {
    if got != want {
        return Err(FemError::InvalidInput(format!(
            "VTU field {name:?} has {got} values for {want} {what}"
        )));
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
