//! Voxel grids and volumes in patient LPS space.
//!
//! Index convention: voxel `(i, j, k)` is stored at `i + nx * (j + ny * k)` (i fastest), and
//! its **centre** sits at `origin + D * diag(spacing) * (i, j, k)`, where the columns of `D`
//! (the direction cosines) are the LPS unit vectors of the i, j and k axes. This is the DICOM
//! convention (ImagePositionPatient is the centre of the first voxel).

use crate::error::{ImagingError, Result};
use nalgebra::{Matrix3, Matrix4, Vector3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Image modality. CT values are Hounsfield units; MR values have no absolute meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Modality {
    /// Computed tomography (values in HU).
    Ct,
    /// Magnetic resonance (arbitrary intensity units).
    Mr,
    /// Anything else (the DICOM modality code, or "unknown" for NIfTI).
    Other(String),
}

impl Modality {
    /// From a DICOM Modality (0008,0060) code.
    pub fn from_dicom_code(code: &str) -> Self {
        match code.trim().to_ascii_uppercase().as_str() {
            "CT" => Modality::Ct,
            "MR" => Modality::Mr,
            other => Modality::Other(other.to_string()),
        }
    }

    /// The DICOM code ("CT", "MR", ...).
    pub fn code(&self) -> &str {
        match self {
            Modality::Ct => "CT",
            Modality::Mr => "MR",
            Modality::Other(s) => s,
        }
    }

    /// True when voxel values are Hounsfield units.
    pub fn is_hounsfield(&self) -> bool {
        matches!(self, Modality::Ct)
    }
}

/// Geometry of a voxel grid in patient LPS coordinates (mm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Number of voxels along i, j, k.
    pub dims: [usize; 3],
    /// Voxel size along i, j, k in mm (all > 0).
    pub spacing: [f64; 3],
    /// LPS position (mm) of the centre of voxel (0, 0, 0).
    pub origin: Vector3<f64>,
    /// Columns: LPS unit vectors of the i, j, k axes (orthonormal).
    pub direction: Matrix3<f64>,
}

impl Grid {
    /// A grid with the given geometry; rejects empty dims, non-positive spacing and
    /// non-orthonormal direction cosines.
    pub fn new(
        dims: [usize; 3],
        spacing: [f64; 3],
        origin: Vector3<f64>,
        direction: Matrix3<f64>,
    ) -> Result<Self> {
        if dims.contains(&0) {
            return Err(ImagingError::Invalid(format!(
                "grid dimensions {dims:?} contain a zero"
            )));
        }
        if spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(ImagingError::Invalid(format!(
                "voxel spacing {spacing:?} mm must be finite and positive"
            )));
        }
        if origin.iter().any(|v| !v.is_finite()) {
            return Err(ImagingError::Invalid(format!(
                "grid origin {origin:?} is not finite"
            )));
        }
        let dtd = direction.transpose() * direction;
        if (dtd - Matrix3::identity()).abs().max() > 1e-3 {
            return Err(ImagingError::Invalid(format!(
                "direction cosines are not orthonormal: {direction:?}"
            )));
        }
        Ok(Grid {
            dims,
            spacing,
            origin,
            direction,
        })
    }

    /// A grid whose i, j, k axes are the LPS x, y, z axes.
    pub fn axis_aligned(dims: [usize; 3], spacing: [f64; 3], origin: Vector3<f64>) -> Result<Self> {
        Grid::new(dims, spacing, origin, Matrix3::identity())
    }

    /// Decomposes an index -> LPS affine (4x4, homogeneous) into a grid. The 3x3 part must
    /// have orthogonal columns (spacing = column norms); small shears are orthonormalised.
    pub fn from_affine(dims: [usize; 3], affine: &Matrix4<f64>) -> Result<Self> {
        let m = affine.fixed_view::<3, 3>(0, 0).into_owned();
        let mut spacing = [0.0; 3];
        let mut dir = Matrix3::zeros();
        for (c, s) in spacing.iter_mut().enumerate() {
            let col = m.column(c).into_owned();
            let n = col.norm();
            if !(n.is_finite() && n > 0.0) {
                return Err(ImagingError::Invalid(format!(
                    "affine column {c} has zero or invalid length; the image geometry is degenerate"
                )));
            }
            *s = n;
            dir.set_column(c, &(col / n));
        }
        // Polar decomposition keeps the nearest orthonormal frame when files carry rounding.
        let svd = dir.svd(true, true);
        let (u, vt) = (svd.u.unwrap(), svd.v_t.unwrap());
        let ortho = u * vt;
        if (ortho - dir).abs().max() > 1e-3 {
            return Err(ImagingError::Invalid(
                "affine has sheared axes (e.g. uncorrected gantry tilt); resample it first".into(),
            ));
        }
        let origin = Vector3::new(affine[(0, 3)], affine[(1, 3)], affine[(2, 3)]);
        Grid::new(dims, spacing, origin, ortho)
    }

    /// The index -> LPS affine (4x4, homogeneous).
    pub fn affine(&self) -> Matrix4<f64> {
        let mut a = Matrix4::identity();
        let m = self.direction * Matrix3::from_diagonal(&Vector3::from(self.spacing));
        a.fixed_view_mut::<3, 3>(0, 0).copy_from(&m);
        a[(0, 3)] = self.origin.x;
        a[(1, 3)] = self.origin.y;
        a[(2, 3)] = self.origin.z;
        a
    }

    /// Total number of voxels.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    /// True for a grid without voxels (never true for a grid built by [`Grid::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Linear storage index of voxel (i, j, k).
    #[inline]
    pub fn linear(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    /// LPS position (mm) of a (fractional) voxel index.
    #[inline]
    pub fn index_to_world(&self, ijk: Vector3<f64>) -> Vector3<f64> {
        self.origin
            + self.direction
                * Vector3::new(
                    ijk.x * self.spacing[0],
                    ijk.y * self.spacing[1],
                    ijk.z * self.spacing[2],
                )
    }

    /// Fractional voxel index of an LPS position (mm).
    #[inline]
    pub fn world_to_index(&self, p: Vector3<f64>) -> Vector3<f64> {
        let local = self.direction.transpose() * (p - self.origin);
        Vector3::new(
            local.x / self.spacing[0],
            local.y / self.spacing[1],
            local.z / self.spacing[2],
        )
    }

    /// Voxel volume in mm^3.
    pub fn voxel_volume(&self) -> f64 {
        self.spacing.iter().product()
    }

    /// Physical size (mm) spanned by the voxels along i, j, k (centre to centre plus one voxel).
    pub fn extent_mm(&self) -> [f64; 3] {
        [
            self.dims[0] as f64 * self.spacing[0],
            self.dims[1] as f64 * self.spacing[1],
            self.dims[2] as f64 * self.spacing[2],
        ]
    }

    /// Three-letter orientation code: for each of i, j, k, the LPS axis letter (L/R, P/A,
    /// S/I) it points most towards, e.g. "LPS" for an axial DICOM stack, "RAS" for a
    /// NIfTI-style radiological array.
    pub fn orientation_code(&self) -> String {
        const POS: [char; 3] = ['L', 'P', 'S'];
        const NEG: [char; 3] = ['R', 'A', 'I'];
        (0..3)
            .map(|c| {
                let col = self.direction.column(c);
                let (axis, v) = (0..3)
                    .map(|r| (r, col[r]))
                    .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                    .expect("three rows");
                if v >= 0.0 {
                    POS[axis]
                } else {
                    NEG[axis]
                }
            })
            .collect()
    }

    /// Axis-aligned LPS bounding box (min, max) of the voxel centres.
    pub fn world_bounds(&self) -> (Vector3<f64>, Vector3<f64>) {
        let mut lo = Vector3::repeat(f64::INFINITY);
        let mut hi = Vector3::repeat(f64::NEG_INFINITY);
        for c in 0..8 {
            let ijk = Vector3::new(
                if c & 1 == 0 {
                    0.0
                } else {
                    (self.dims[0] - 1) as f64
                },
                if c & 2 == 0 {
                    0.0
                } else {
                    (self.dims[1] - 1) as f64
                },
                if c & 4 == 0 {
                    0.0
                } else {
                    (self.dims[2] - 1) as f64
                },
            );
            let p = self.index_to_world(ijk);
            lo = lo.inf(&p);
            hi = hi.sup(&p);
        }
        (lo, hi)
    }

    /// A grid covering the same region with isotropic voxels of `spacing` mm, same direction.
    pub fn isotropic(&self, spacing: f64) -> Result<Grid> {
        self.with_spacing([spacing; 3])
    }

    /// A grid covering the same region (same origin and direction) with voxels of
    /// `spacing` mm along i, j, k: as many as fit from the first voxel centre to the last.
    pub fn with_spacing(&self, spacing: [f64; 3]) -> Result<Grid> {
        if !spacing.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(ImagingError::Invalid(format!(
                "spacing {spacing:?} mm must be positive"
            )));
        }
        let ext = |a: usize| (self.dims[a] - 1) as f64 * self.spacing[a];
        let dims = [0, 1, 2].map(|a| (ext(a) / spacing[a]).floor() as usize + 1);
        Grid::new(dims, spacing, self.origin, self.direction)
    }
}

/// A voxel value type: anything convertible to and from `f64` for interpolation.
pub trait Voxel: Copy + Default + PartialEq + Send + Sync + std::fmt::Debug + 'static {
    /// The value as f64.
    fn to_f64(self) -> f64;
    /// The nearest representable value (rounded and saturated for integers).
    fn from_f64(v: f64) -> Self;
}

macro_rules! int_voxel {
    ($($t:ty),*) => {$(
        impl Voxel for $t {
            #[inline]
            fn to_f64(self) -> f64 { self as f64 }
            #[inline]
            fn from_f64(v: f64) -> Self { v.round() as $t } // `as` saturates; NaN -> 0
        }
    )*};
}
int_voxel!(u8, i8, u16, i16, u32, i32);

impl Voxel for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Voxel for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Interpolation used when sampling between voxel centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Nearest voxel: the only choice for label maps.
    Nearest,
    /// Trilinear: for intensities (HU).
    Trilinear,
}

/// Voxel data on a [`Grid`].
#[derive(Debug, Clone, PartialEq)]
pub struct Volume<T> {
    grid: Grid,
    data: Vec<T>,
}

impl<T: Voxel> Volume<T> {
    /// A volume from data in storage order (i fastest); the length must match the grid.
    pub fn new(grid: Grid, data: Vec<T>) -> Result<Self> {
        if data.len() != grid.len() {
            return Err(ImagingError::Invalid(format!(
                "volume data has {} voxels but the grid {:?} needs {}",
                data.len(),
                grid.dims,
                grid.len()
            )));
        }
        Ok(Volume { grid, data })
    }

    /// A volume with every voxel set to `value`.
    pub fn filled(grid: Grid, value: T) -> Self {
        let n = grid.len();
        Volume {
            grid,
            data: vec![value; n],
        }
    }

    /// A volume whose voxel (i, j, k) is `f(i, j, k)`, computed in parallel over slices.
    pub fn from_fn<F>(grid: Grid, f: F) -> Self
    where
        F: Fn(usize, usize, usize) -> T + Sync,
    {
        let [nx, ny, _] = grid.dims;
        let mut data = vec![T::default(); grid.len()];
        data.par_chunks_mut(nx * ny)
            .enumerate()
            .for_each(|(k, slab)| {
                for j in 0..ny {
                    for i in 0..nx {
                        slab[i + nx * j] = f(i, j, k);
                    }
                }
            });
        Volume { grid, data }
    }

    /// The geometry.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Dimensions (i, j, k).
    pub fn dims(&self) -> [usize; 3] {
        self.grid.dims
    }

    /// Voxels in storage order (i fastest).
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Mutable voxels in storage order.
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the volume, returning grid and data.
    pub fn into_parts(self) -> (Grid, Vec<T>) {
        (self.grid, self.data)
    }

    /// Voxel (i, j, k); panics when out of range (a programming error, not an input error).
    #[inline]
    pub fn get(&self, i: usize, j: usize, k: usize) -> T {
        self.data[self.grid.linear(i, j, k)]
    }

    /// Sets voxel (i, j, k).
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, k: usize, v: T) {
        let l = self.grid.linear(i, j, k);
        self.data[l] = v;
    }

    /// The voxel nearest to an LPS point, or `None` outside the grid.
    pub fn sample_nearest(&self, p: Vector3<f64>) -> Option<T> {
        let f = self.grid.world_to_index(p);
        let idx = [f.x, f.y, f.z].map(|v| v.round());
        if idx
            .iter()
            .zip(self.grid.dims)
            .any(|(&v, n)| v < 0.0 || v > (n - 1) as f64)
        {
            return None;
        }
        Some(self.get(idx[0] as usize, idx[1] as usize, idx[2] as usize))
    }

    /// Trilinear interpolation at an LPS point, or `None` outside the hull of voxel centres
    /// (a tolerance of 1e-6 voxel admits points on the boundary).
    pub fn sample_trilinear(&self, p: Vector3<f64>) -> Option<f64> {
        self.sample_trilinear_by(p, |v| v.to_f64())
    }

    /// Trilinear interpolation at an LPS point of `value` of each voxel (e.g. the indicator
    /// of one label, `|l| f64::from(u8::from(l == label))`, whose interpolant is the label's
    /// fraction between voxel centres), or `None` outside the hull of voxel centres.
    pub fn sample_trilinear_by(&self, p: Vector3<f64>, value: impl Fn(T) -> f64) -> Option<f64> {
        let f = self.grid.world_to_index(p);
        self.trilinear_at_index([f.x, f.y, f.z], value)
    }

    fn trilinear_at_index(&self, f: [f64; 3], value: impl Fn(T) -> f64) -> Option<f64> {
        const TOL: f64 = 1e-6;
        let mut base = [0usize; 3];
        let mut frac = [0.0; 3];
        for a in 0..3 {
            let n = self.grid.dims[a];
            let v = f[a];
            if v < -TOL || v > (n - 1) as f64 + TOL {
                return None;
            }
            let v = v.clamp(0.0, (n - 1) as f64);
            if n == 1 {
                base[a] = 0;
                frac[a] = 0.0;
            } else {
                let b = (v.floor() as usize).min(n - 2);
                base[a] = b;
                frac[a] = v - b as f64;
            }
        }
        let step = [
            usize::from(self.grid.dims[0] > 1),
            usize::from(self.grid.dims[1] > 1),
            usize::from(self.grid.dims[2] > 1),
        ];
        let mut acc = 0.0;
        for c in 0..8 {
            let (dx, dy, dz) = (c & 1, (c >> 1) & 1, (c >> 2) & 1);
            let w = (if dx == 1 { frac[0] } else { 1.0 - frac[0] })
                * (if dy == 1 { frac[1] } else { 1.0 - frac[1] })
                * (if dz == 1 { frac[2] } else { 1.0 - frac[2] });
            if w == 0.0 {
                continue;
            }
            acc += w * value(self.get(
                base[0] + dx * step[0],
                base[1] + dy * step[1],
                base[2] + dz * step[2],
            ));
        }
        Some(acc)
    }

    /// Resamples onto `target` (any position and orientation); voxels whose centre falls
    /// outside this volume get `fill`. Parallel over target slices.
    pub fn resample(&self, target: &Grid, interp: Interpolation, fill: T) -> Volume<T> {
        // Target index -> source index is affine: precompute it once.
        let to_src = self.grid_to_index_map(target);
        Volume::from_fn(target.clone(), |i, j, k| {
            let s = to_src(i, j, k);
            match interp {
                Interpolation::Trilinear => self
                    .trilinear_at_index(s, |v| v.to_f64())
                    .map(T::from_f64)
                    .unwrap_or(fill),
                Interpolation::Nearest => {
                    let r = s.map(|v| v.round());
                    if (0..3).all(|a| r[a] >= 0.0 && r[a] <= (self.grid.dims[a] - 1) as f64) {
                        self.get(r[0] as usize, r[1] as usize, r[2] as usize)
                    } else {
                        fill
                    }
                }
            }
        })
    }

    fn grid_to_index_map(&self, target: &Grid) -> impl Fn(usize, usize, usize) -> [f64; 3] + Sync {
        let src_inv = Matrix3::from_diagonal(&Vector3::from(self.grid.spacing.map(|s| 1.0 / s)))
            * self.grid.direction.transpose();
        let m = src_inv * target.direction * Matrix3::from_diagonal(&Vector3::from(target.spacing));
        let t = src_inv * (target.origin - self.grid.origin);
        move |i, j, k| {
            let v = m * Vector3::new(i as f64, j as f64, k as f64) + t;
            [v.x, v.y, v.z]
        }
    }

    /// Resamples to isotropic voxels of `spacing` mm over the same region and orientation.
    pub fn resample_isotropic(
        &self,
        spacing: f64,
        interp: Interpolation,
        fill: T,
    ) -> Result<Volume<T>> {
        Ok(self.resample(&self.grid.isotropic(spacing)?, interp, fill))
    }

    /// The sub-volume of voxels `lo[a] <= idx < hi[a]`; geometry follows (origin moves).
    pub fn crop(&self, lo: [usize; 3], hi: [usize; 3]) -> Result<Volume<T>> {
        for a in 0..3 {
            if lo[a] >= hi[a] || hi[a] > self.grid.dims[a] {
                return Err(ImagingError::Invalid(format!(
                    "crop range {lo:?}..{hi:?} is empty or outside the volume {:?}",
                    self.grid.dims
                )));
            }
        }
        let dims = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let origin =
            self.grid
                .index_to_world(Vector3::new(lo[0] as f64, lo[1] as f64, lo[2] as f64));
        let grid = Grid::new(dims, self.grid.spacing, origin, self.grid.direction)?;
        let mut data = Vec::with_capacity(grid.len());
        for k in lo[2]..hi[2] {
            for j in lo[1]..hi[1] {
                let start = self.grid.linear(lo[0], j, k);
                data.extend_from_slice(&self.data[start..start + dims[0]]);
            }
        }
        Volume::new(grid, data)
    }

    /// Crops to the voxels whose centres lie inside the LPS box spanned by `a` and `b`
    /// (clamped to the volume); an error when the box misses the volume.
    pub fn crop_world(&self, a: Vector3<f64>, b: Vector3<f64>) -> Result<Volume<T>> {
        let (pmin, pmax) = (a.inf(&b), a.sup(&b));
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for c in 0..8 {
            let p = Vector3::new(
                if c & 1 == 0 { pmin.x } else { pmax.x },
                if c & 2 == 0 { pmin.y } else { pmax.y },
                if c & 4 == 0 { pmin.z } else { pmax.z },
            );
            let f = self.grid.world_to_index(p);
            for ax in 0..3 {
                lo[ax] = lo[ax].min(f[ax]);
                hi[ax] = hi[ax].max(f[ax]);
            }
        }
        let mut ilo = [0usize; 3];
        let mut ihi = [0usize; 3];
        for ax in 0..3 {
            let n = self.grid.dims[ax] as f64;
            let l = (lo[ax] - 1e-9).ceil().max(0.0);
            let h = ((hi[ax] + 1e-9).floor() + 1.0).min(n);
            if l >= h {
                return Err(ImagingError::Invalid(format!(
                    "crop box {pmin:?}..{pmax:?} (mm, LPS) does not overlap the volume"
                )));
            }
            ilo[ax] = l as usize;
            ihi[ax] = h as usize;
        }
        self.crop(ilo, ihi)
    }

    /// Smallest and largest value (as f64); NaNs ignored.
    pub fn min_max(&self) -> (f64, f64) {
        self.data
            .par_iter()
            .fold(
                || (f64::INFINITY, f64::NEG_INFINITY),
                |(lo, hi), v| {
                    let x = v.to_f64();
                    if x.is_nan() {
                        (lo, hi)
                    } else {
                        (lo.min(x), hi.max(x))
                    }
                },
            )
            .reduce(
                || (f64::INFINITY, f64::NEG_INFINITY),
                |a, b| (a.0.min(b.0), a.1.max(b.1)),
            )
    }

    /// A volume of another voxel type on the same grid.
    pub fn map<U: Voxel, F: Fn(T) -> U + Sync>(&self, f: F) -> Volume<U> {
        Volume {
            grid: self.grid.clone(),
            data: self.data.par_iter().map(|&v| f(v)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Rotation3;

    fn oblique_grid(dims: [usize; 3], spacing: [f64; 3]) -> Grid {
        let r = Rotation3::from_euler_angles(0.3, -0.5, 0.9).into_inner();
        Grid::new(dims, spacing, Vector3::new(-120.5, 33.0, 410.25), r).unwrap()
    }

    /// A linear field is reproduced exactly by trilinear interpolation, whatever the grid.
    fn linear_field(p: Vector3<f64>) -> f64 {
        3.0 + 0.5 * p.x - 1.25 * p.y + 0.75 * p.z
    }

    #[test]
    fn index_world_round_trip_on_oblique_grid() {
        let g = oblique_grid([17, 11, 9], [0.7, 1.1, 2.5]);
        for ijk in [Vector3::new(0.0, 0.0, 0.0), Vector3::new(3.5, 10.0, 8.25)] {
            let back = g.world_to_index(g.index_to_world(ijk));
            assert!((back - ijk).norm() < 1e-10);
        }
        // Moving one voxel along k moves spacing[2] mm along the third direction column.
        let d = g.index_to_world(Vector3::new(0.0, 0.0, 1.0)) - g.origin;
        assert!((d.norm() - 2.5).abs() < 1e-12);
        assert!((d / 2.5 - g.direction.column(2)).norm() < 1e-12);
    }

    #[test]
    fn affine_decomposition_round_trips() {
        let g = oblique_grid([4, 5, 6], [0.6, 0.6, 1.5]);
        let g2 = Grid::from_affine(g.dims, &g.affine()).unwrap();
        assert!((g2.direction - g.direction).abs().max() < 1e-12);
        assert!((g2.origin - g.origin).norm() < 1e-12);
        for a in 0..3 {
            assert!((g2.spacing[a] - g.spacing[a]).abs() < 1e-12);
        }
        let mut sheared = g.affine();
        sheared[(0, 2)] += 0.3; // tilt the k axis: gantry-tilt-like shear
        assert!(Grid::from_affine(g.dims, &sheared).is_err());
    }

    #[test]
    fn orientation_codes() {
        let g = Grid::axis_aligned([2, 2, 2], [1.0; 3], Vector3::zeros()).unwrap();
        assert_eq!(g.orientation_code(), "LPS");
        let ras = Grid::new(
            [2, 2, 2],
            [1.0; 3],
            Vector3::zeros(),
            Matrix3::from_diagonal(&Vector3::new(-1.0, -1.0, 1.0)),
        )
        .unwrap();
        assert_eq!(ras.orientation_code(), "RAS");
        // Sagittal DICOM slices: rows along P, columns along I, slices along L... "PIL"
        let sag = Grid::new(
            [2, 2, 2],
            [1.0; 3],
            Vector3::zeros(),
            Matrix3::from_columns(&[
                Vector3::new(0.0, 1.0, 0.0),
                Vector3::new(0.0, 0.0, -1.0),
                Vector3::new(1.0, 0.0, 0.0),
            ]),
        )
        .unwrap();
        assert_eq!(sag.orientation_code(), "PIL");
    }

    #[test]
    fn invalid_grids_are_rejected() {
        assert!(Grid::axis_aligned([0, 1, 1], [1.0; 3], Vector3::zeros()).is_err());
        assert!(Grid::axis_aligned([1, 1, 1], [1.0, -1.0, 1.0], Vector3::zeros()).is_err());
        let skew = Matrix3::new(1.0, 0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0);
        assert!(Grid::new([1, 1, 1], [1.0; 3], Vector3::zeros(), skew).is_err());
        let g = Grid::axis_aligned([2, 2, 2], [1.0; 3], Vector3::zeros()).unwrap();
        assert!(Volume::new(g, vec![0i16; 7]).is_err());
    }

    /// The interpolated indicator of one label is its fraction between voxel centres.
    #[test]
    fn trilinear_of_a_label_indicator_is_its_fraction() {
        let g = Grid::axis_aligned([2, 2, 1], [1.0, 2.0, 1.0], Vector3::zeros()).unwrap();
        // Label 7 at (1, 0) and (1, 1), label 3 at (0, 0), 0 at (0, 1).
        let v = Volume::new(g, vec![3u16, 7, 0, 7]).unwrap();
        let is7 = |l: u16| f64::from(u8::from(l == 7));
        let at = |x: f64, y: f64| v.sample_trilinear_by(Vector3::new(x, y, 0.0), is7).unwrap();
        assert!((at(0.25, 0.0) - 0.25).abs() < 1e-12);
        assert!((at(0.6, 1.0) - 0.6).abs() < 1e-12);
        assert_eq!(at(1.0, 2.0), 1.0);
        let is3 = |l: u16| f64::from(u8::from(l == 3));
        let f = v
            .sample_trilinear_by(Vector3::new(0.5, 1.0, 0.0), is3)
            .unwrap();
        assert!((f - 0.25).abs() < 1e-12, "{f}");
        assert!(v
            .sample_trilinear_by(Vector3::new(1.5, 0.0, 0.0), is7)
            .is_none());
    }

    #[test]
    fn trilinear_is_exact_for_linear_fields_on_oblique_grids() {
        let g = oblique_grid([12, 10, 8], [0.8, 1.2, 2.0]);
        let v = Volume::from_fn(g.clone(), |i, j, k| {
            linear_field(g.index_to_world(Vector3::new(i as f64, j as f64, k as f64)))
        });
        for f in [
            [0.0, 0.0, 0.0],
            [5.3, 2.7, 6.9],
            [11.0, 9.0, 7.0],
            [0.5, 8.5, 3.25],
        ] {
            let p = g.index_to_world(Vector3::from(f));
            let s = v.sample_trilinear(p).unwrap();
            assert!(
                (s - linear_field(p)).abs() < 1e-9,
                "{s} vs {}",
                linear_field(p)
            );
        }
        let outside = g.index_to_world(Vector3::new(-0.6, 2.0, 2.0));
        assert!(v.sample_trilinear(outside).is_none());
        assert!(v.sample_nearest(outside).is_none());
    }

    #[test]
    fn resampling_an_oblique_volume_onto_an_axis_aligned_grid_preserves_a_linear_field() {
        let src = oblique_grid([40, 36, 30], [1.0, 1.0, 1.5]);
        let vol = Volume::from_fn(src.clone(), |i, j, k| {
            linear_field(src.index_to_world(Vector3::new(i as f64, j as f64, k as f64)))
        });
        // An axis-aligned grid inside the oblique one, around its centre.
        let centre = src.index_to_world(Vector3::new(19.5, 17.5, 14.5));
        let tgt =
            Grid::axis_aligned([10, 10, 10], [0.9; 3], centre - Vector3::repeat(4.05)).unwrap();
        let out = vol.resample(&tgt, Interpolation::Trilinear, f64::NAN);
        for k in 0..10 {
            for j in 0..10 {
                for i in 0..10 {
                    let p = tgt.index_to_world(Vector3::new(i as f64, j as f64, k as f64));
                    assert!((out.get(i, j, k) - linear_field(p)).abs() < 1e-9);
                }
            }
        }
    }

    #[test]
    fn isotropic_resampling_keeps_extent_and_labels() {
        let g =
            Grid::axis_aligned([10, 10, 5], [0.5, 0.5, 2.0], Vector3::new(1.0, 2.0, 3.0)).unwrap();
        // Label 7 where z >= 7 mm (slices k >= 2 at z = 7, 9, 11), else 0.
        let lab = Volume::from_fn(g.clone(), |_, _, k| if k >= 2 { 7u16 } else { 0 });
        let iso = lab
            .resample_isotropic(0.5, Interpolation::Nearest, 0)
            .unwrap();
        assert_eq!(iso.dims(), [10, 10, 17]);
        assert_eq!(iso.grid().spacing, [0.5; 3]);
        // Nearest label changes half-way between slice centres 5 mm and 7 mm.
        for k in 0..17 {
            let z = 3.0 + 0.5 * k as f64;
            // Half-way (z = 6 mm, index 1.5) rounds up to the upper slice.
            let want = if z >= 6.0 { 7 } else { 0 };
            assert_eq!(iso.get(3, 3, k), want, "z = {z}");
        }
    }

    /// Other voxel sizes per axis over the same region: as many voxels as fit from the first
    /// centre to the last, origin and axes kept; a zero size is an error.
    #[test]
    fn a_grid_at_another_spacing_covers_the_same_region() {
        let g = oblique_grid([20, 15, 10], [0.7, 0.9, 1.3]);
        let h = g.with_spacing([1.5, 3.0, 1.2]).unwrap();
        // Extents 13.3, 12.6 and 11.7 mm: 8, 4 and 9 whole steps past the first centre.
        assert_eq!(h.dims, [9, 5, 10]);
        assert_eq!(h.origin, g.origin);
        assert_eq!(h.direction, g.direction);
        assert!(g.with_spacing([1.0, 0.0, 1.0]).is_err());
        assert_eq!(g.isotropic(1.0).unwrap(), g.with_spacing([1.0; 3]).unwrap());
    }

    #[test]
    fn crop_moves_origin_and_keeps_world_positions() {
        let g = oblique_grid([20, 15, 10], [0.7, 0.9, 1.3]);
        let v = Volume::from_fn(g.clone(), |i, j, k| (i + 100 * j + 10000 * k) as i32);
        let c = v.crop([3, 4, 5], [10, 12, 9]).unwrap();
        assert_eq!(c.dims(), [7, 8, 4]);
        assert_eq!(c.get(0, 0, 0), v.get(3, 4, 5));
        assert_eq!(c.get(6, 7, 3), v.get(9, 11, 8));
        let p = c.grid().index_to_world(Vector3::new(2.0, 3.0, 1.0));
        assert_eq!(v.sample_nearest(p), Some(v.get(5, 7, 6)));
        assert!(v.crop([3, 4, 5], [3, 12, 9]).is_err());
        assert!(v.crop([0, 0, 0], [21, 1, 1]).is_err());
    }

    #[test]
    fn crop_world_selects_the_voxels_inside_the_box() {
        let g =
            Grid::axis_aligned([10, 10, 10], [1.0, 2.0, 3.0], Vector3::new(0.0, 0.0, 0.0)).unwrap();
        let v = Volume::filled(g, 1u8);
        let c = v
            .crop_world(Vector3::new(2.0, 3.0, 6.0), Vector3::new(5.5, 9.0, 100.0))
            .unwrap();
        // x in {2,3,4,5}, y in {4,6,8}, z in {6,...,27}
        assert_eq!(c.dims(), [4, 3, 8]);
        assert!((c.grid().origin - Vector3::new(2.0, 4.0, 6.0)).norm() < 1e-12);
        assert!(v
            .crop_world(Vector3::new(50.0, 0.0, 0.0), Vector3::new(60.0, 1.0, 1.0))
            .is_err());
    }

    #[test]
    fn min_max_and_map() {
        let g = Grid::axis_aligned([3, 1, 1], [1.0; 3], Vector3::zeros()).unwrap();
        let v = Volume::new(g, vec![-1000.0f32, f32::NAN, 2500.0]).unwrap();
        assert_eq!(v.min_max(), (-1000.0, 2500.0));
        let m = v.map(|x| if x > 200.0 { 1u8 } else { 0 });
        assert_eq!(m.data(), &[0, 0, 1]);
        assert_eq!(i16::from_f64(40000.0), i16::MAX);
        assert_eq!(u8::from_f64(-3.0), 0);
    }
}
