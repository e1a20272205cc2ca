//! Turning a set of positioned 2-D images into a regular 3-D grid: sorting along the
//! slice normal, duplicate/gap/uneven-spacing detection, gantry tilt, and the linear
//! resampling that repairs the last three.

use super::{LoadOptions, TiltPolicy};
use crate::error::{ImagingError, Result};
use crate::volume::Grid;
use nalgebra::{Matrix3, Vector3};
use rayon::prelude::*;
use std::path::Path;

/// One 2-D image to be stacked.
pub(crate) struct Placed<'a> {
    pub path: &'a Path,
    /// Frame number for multi-frame files.
    pub frame: Option<usize>,
    pub ipp: Vector3<f64>,
}

impl Placed<'_> {
    fn label(&self) -> String {
        let name = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        match self.frame {
            Some(f) => format!("{name} frame {}", f + 1),
            None => name,
        }
    }
}

/// How the sorted images become the output volume.
#[derive(Debug)]
pub(crate) struct StackPlan {
    /// Image indices sorted by position along the slice normal.
    pub order: Vec<usize>,
    /// Geometry of the output volume.
    pub grid: Grid,
    /// `None`: the sorted images are the output slices as they are.
    pub restack: Option<Restack>,
    pub warnings: Vec<String>,
}

/// Linear resampling along the normal of a (possibly sheared, unevenly spaced) stack.
#[derive(Debug)]
pub(crate) struct Restack {
    /// Position of each sorted source slice along the normal (mm, increasing).
    d: Vec<f64>,
    /// In-plane offset of each sorted source slice from the output grid's in-plane origin,
    /// in pixels along i and j (non-zero only for gantry tilt).
    shift: Vec<[f64; 2]>,
    /// Position along the normal of output slice 0, and the output slice spacing (mm).
    z0: f64,
    dz: f64,
}

/// Right-handed orthonormal frame (row, column, normal) from ImageOrientationPatient.
pub(crate) fn frame_from_iop(iop: &[f64; 6]) -> Option<Matrix3<f64>> {
    let r = Vector3::new(iop[0], iop[1], iop[2]);
    let c = Vector3::new(iop[3], iop[4], iop[5]);
    let (rn, cn) = (r.norm(), c.norm());
    if !(rn > 0.5 && cn > 0.5) || (r.dot(&c) / (rn * cn)).abs() > 0.05 {
        return None;
    }
    // Writers round cosines to a few digits; Gram-Schmidt restores orthonormality.
    let r = r / rn;
    let c = (c - r * r.dot(&c)).normalize();
    Some(Matrix3::from_columns(&[r, c, r.cross(&c)]))
}

/// Angle (degrees) between the stacking direction (first to last position) and the normal.
fn tilt_degrees(first: &Vector3<f64>, last: &Vector3<f64>, n: &Vector3<f64>) -> f64 {
    let s = last - first;
    let len = s.norm();
    if len == 0.0 {
        return 0.0;
    }
    (s.dot(n).abs() / len).clamp(-1.0, 1.0).acos().to_degrees()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

/// Plans the stacking of `images` (same orientation and pixel grid, checked by the caller).
/// `pixel_spacing` is DICOM order (row spacing, column spacing); `single_slice_spacing` is
/// used only when there is one image.
pub(crate) fn plan(
    images: &[Placed<'_>],
    iop: &[f64; 6],
    pixel_spacing: [f64; 2],
    dims_ij: [usize; 2],
    single_slice_spacing: Option<f64>,
    opts: &LoadOptions,
) -> Result<StackPlan> {
    let first_path = images.first().map_or(Path::new("."), |p| p.path);
    let dir = frame_from_iop(iop).ok_or_else(|| {
        ImagingError::input(
            first_path,
            format!("ImageOrientationPatient {iop:?} is not two perpendicular unit vectors"),
            "the file is corrupt; re-export the series",
        )
    })?;
    let (r, c, n) = (
        dir.column(0).into_owned(),
        dir.column(1).into_owned(),
        dir.column(2).into_owned(),
    );
    let spacing_ij = [pixel_spacing[1], pixel_spacing[0]];
    let mut order: Vec<usize> = (0..images.len()).collect();
    let d_of = |i: usize| images[i].ipp.dot(&n);
    order.sort_by(|&a, &b| d_of(a).total_cmp(&d_of(b)));
    let d: Vec<f64> = order.iter().map(|&i| d_of(i)).collect();
    let first = &images[order[0]];
    let mut warnings = Vec::new();
    let dims2 = |nz| [dims_ij[0], dims_ij[1], nz];

    if images.len() == 1 {
        let dz = single_slice_spacing.filter(|s| *s > 0.0).unwrap_or(1.0);
        warnings.push(format!(
            "the series has a single slice; its thickness is taken as {dz} mm"
        ));
        let grid = Grid::new(dims2(1), [spacing_ij[0], spacing_ij[1], dz], first.ipp, dir)?;
        return Ok(StackPlan {
            order,
            grid,
            restack: None,
            warnings,
        });
    }

    let gaps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(i) = gaps.iter().position(|g| *g < 0.01) {
        let (a, b) = (&images[order[i]], &images[order[i + 1]]);
        return Err(ImagingError::input(
            b.path,
            format!(
                "two images lie at the same position along the slice normal ({:.3} mm): {} and {}",
                d[i],
                a.label(),
                b.label()
            ),
            "the series holds duplicate files or several volumes (phases, echoes, \
             reconstructions); remove the duplicates or export one volume per series",
        ));
    }
    let typical = median(&gaps);
    let tol = (0.01 * typical).max(0.01);
    let missing: Vec<usize> = (0..gaps.len())
        .filter(|&i| gaps[i] > 1.5 * typical)
        .collect();
    let uneven = gaps.iter().any(|g| (g - typical).abs() > tol);
    let last = &images[*order.last().expect("at least two images")];
    let tilt = tilt_degrees(&first.ipp, &last.ipp, &n);
    let tilted = tilt > 0.5;

    if !missing.is_empty() && !opts.resample_gaps {
        let list: Vec<String> = missing
            .iter()
            .take(3)
            .map(|&i| {
                format!(
                    "{:.2} mm gap between {:.2} mm ({}) and {:.2} mm ({})",
                    gaps[i],
                    d[i],
                    images[order[i]].label(),
                    d[i + 1],
                    images[order[i + 1]].label()
                )
            })
            .collect();
        let more = if missing.len() > 3 {
            format!(" and {} more", missing.len() - 3)
        } else {
            String::new()
        };
        return Err(ImagingError::input(
            images[order[missing[0]]].path,
            format!(
                "slices are missing from the series (positions along the slice normal; typical spacing {typical:.3} mm): {}{more}",
                list.join("; ")
            ),
            "re-export the complete series, or pass --resample-gaps to interpolate across the gap",
        ));
    }
    if tilted && matches!(opts.tilt, TiltPolicy::Refuse) {
        return Err(ImagingError::input(
            first.path,
            format!(
                "the slices are sheared by a gantry tilt of {tilt:.2} degrees (the stack does not run along the slice normal)"
            ),
            "allow shear correction (the default tilt policy) or reconstruct the series without tilt",
        ));
    }

    if !tilted && !uneven {
        // Regular stack: the mean spacing is more exact than any single difference.
        let dz = (d[d.len() - 1] - d[0]) / (d.len() - 1) as f64;
        let grid = Grid::new(
            dims2(images.len()),
            [spacing_ij[0], spacing_ij[1], dz],
            first.ipp,
            dir,
        )?;
        return Ok(StackPlan {
            order,
            grid,
            restack: None,
            warnings,
        });
    }

    let dz = if uneven {
        typical
    } else {
        (d[d.len() - 1] - d[0]) / (d.len() - 1) as f64
    };
    // In-plane offsets relative to the first slice; ignored below the tilt threshold.
    let offsets: Vec<[f64; 2]> = order
        .iter()
        .map(|&i| {
            if tilted {
                let o = images[i].ipp - first.ipp;
                [o.dot(&r), o.dot(&c)]
            } else {
                [0.0, 0.0]
            }
        })
        .collect();
    // Centre the output in-plane on the mean offset so a tilted stack loses equally little
    // at both edges.
    let k = offsets.len() as f64;
    let u0 = offsets.iter().map(|o| o[0]).sum::<f64>() / k;
    let v0 = offsets.iter().map(|o| o[1]).sum::<f64>() / k;
    let shift: Vec<[f64; 2]> = offsets
        .iter()
        .map(|o| [(u0 - o[0]) / spacing_ij[0], (v0 - o[1]) / spacing_ij[1]])
        .collect();
    let nz = ((d[d.len() - 1] - d[0]) / dz + 0.01).floor() as usize + 1;
    if nz > 4 * images.len() {
        // Only reachable with wildly irregular positions; refuse rather than allocate.
        return Err(ImagingError::input(
            first.path,
            format!(
                "slice positions are too irregular to resample ({} images spread over {:.1} mm with a typical spacing of {dz:.4} mm)",
                images.len(),
                d[d.len() - 1] - d[0]
            ),
            "check that the folder holds a single volume; re-export the series",
        ));
    }
    let origin = first.ipp + r * u0 + c * v0;
    let grid = Grid::new(dims2(nz), [spacing_ij[0], spacing_ij[1], dz], origin, dir)?;
    if tilted {
        warnings.push(format!(
            "gantry tilt of {tilt:.2} degrees: the sheared slices were resampled onto a regular \
             grid perpendicular to them (shear correction); voxels without data at the edges \
             hold the lowest value of the series"
        ));
    }
    if !missing.is_empty() {
        let at: Vec<String> = missing
            .iter()
            .take(5)
            .map(|&i| format!("{:.2}..{:.2} mm", d[i], d[i + 1]))
            .collect();
        warnings.push(format!(
            "{} gap(s) in the slice positions ({}) were filled by linear interpolation; the \
             volume was resampled onto uniform {dz:.3} mm spacing",
            missing.len(),
            at.join(", ")
        ));
    } else if uneven {
        let (lo, hi) = gaps.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), g| {
            (lo.min(*g), hi.max(*g))
        });
        warnings.push(format!(
            "uneven slice spacing ({lo:.3} to {hi:.3} mm); resampled linearly onto uniform {dz:.3} mm spacing"
        ));
    }
    Ok(StackPlan {
        order,
        grid,
        restack: Some(Restack {
            z0: d[0],
            d,
            shift,
            dz,
        }),
        warnings,
    })
}

/// Bilinear sample of one slice at fractional pixel (x, y); `None` outside its pixel centres.
#[inline]
fn bilinear(slice: &[f32], nx: usize, ny: usize, x: f64, y: f64) -> Option<f64> {
    const TOL: f64 = 1e-6;
    if x < -TOL || y < -TOL || x > (nx - 1) as f64 + TOL || y > (ny - 1) as f64 + TOL {
        return None;
    }
    let x = x.clamp(0.0, (nx - 1) as f64);
    let y = y.clamp(0.0, (ny - 1) as f64);
    let x0 = (x.floor() as usize).min(nx.saturating_sub(2));
    let y0 = (y.floor() as usize).min(ny.saturating_sub(2));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let x1 = (x0 + 1).min(nx - 1);
    let y1 = (y0 + 1).min(ny - 1);
    let at = |i: usize, j: usize| f64::from(slice[i + nx * j]);
    Some(
        (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x1, y0))
            + fy * ((1.0 - fx) * at(x0, y1) + fx * at(x1, y1)),
    )
}

impl Restack {
    /// Resamples the sorted source slices (`src`, slice after slice) onto `grid`. Points
    /// outside the data get `fill`.
    pub(crate) fn apply(&self, src: &[f32], grid: &Grid, fill: f32) -> Vec<f32> {
        let [nx, ny, nz] = grid.dims;
        let plane = nx * ny;
        let n_src = self.d.len();
        let mut out = vec![fill; plane * nz];
        out.par_chunks_mut(plane).enumerate().for_each(|(t, dst)| {
            let z = self.z0 + t as f64 * self.dz;
            let a = self
                .d
                .partition_point(|&dk| dk <= z)
                .saturating_sub(1)
                .min(n_src - 2);
            let b = a + 1;
            let w = ((z - self.d[a]) / (self.d[b] - self.d[a])).clamp(0.0, 1.0);
            let sa = &src[a * plane..(a + 1) * plane];
            let sb = &src[b * plane..(b + 1) * plane];
            for j in 0..ny {
                for i in 0..nx {
                    let sample = |s: &[f32], k: usize| {
                        bilinear(
                            s,
                            nx,
                            ny,
                            i as f64 + self.shift[k][0],
                            j as f64 + self.shift[k][1],
                        )
                    };
                    let va = if w < 1.0 { sample(sa, a) } else { Some(0.0) };
                    let vb = if w > 0.0 { sample(sb, b) } else { Some(0.0) };
                    if let (Some(va), Some(vb)) = (va, vb) {
                        dst[i + nx * j] = ((1.0 - w) * va + w * vb) as f32;
                    }
                }
            }
        });
        out
    }
}
