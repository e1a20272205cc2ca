//! Slices of a volume as PNG images, for people to look at.
//!
//! Slices are sampled in world (LPS) space, so any acquisition orientation is displayed the
//! way radiologists expect: axial slices seen from the feet (patient's right on the image
//! left, anterior up), coronal slices seen from the front, sagittal slices seen from the
//! patient's left (anterior on the image left, superior up). Pixels are square, with the
//! finest voxel spacing of the volume.

use crate::error::Result;
use crate::volume::{Volume, Voxel};
use nalgebra::Vector3;
use std::path::Path;

/// Which anatomical plane a slice lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// Transverse plane (normal along S).
    Axial,
    /// Frontal plane (normal along P).
    Coronal,
    /// Median/parasagittal plane (normal along L).
    Sagittal,
}

impl Plane {
    /// (image-right, image-down) directions in LPS.
    fn axes(self) -> (Vector3<f64>, Vector3<f64>) {
        match self {
            Plane::Axial => (Vector3::x(), Vector3::y()),
            Plane::Coronal => (Vector3::x(), -Vector3::z()),
            Plane::Sagittal => (Vector3::y(), -Vector3::z()),
        }
    }
}

/// Display window in the volume's units (for CT: HU).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Window centre (level).
    pub center: f64,
    /// Window width.
    pub width: f64,
}

impl Window {
    /// The standard CT bone window (C 400, W 1800 HU).
    pub const BONE: Window = Window {
        center: 400.0,
        width: 1800.0,
    };
    /// The standard CT soft-tissue window (C 40, W 400 HU).
    pub const SOFT_TISSUE: Window = Window {
        center: 40.0,
        width: 400.0,
    };

    fn grey(&self, v: f64) -> u8 {
        let lo = self.center - self.width / 2.0;
        (((v - lo) / self.width).clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// An RGB image in row-major order.
#[derive(Debug, Clone)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// Encodes as PNG bytes.
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("PNG header to memory");
            w.write_image_data(&self.pixels)
                .expect("PNG data to memory");
        }
        out
    }

    /// Writes the image as a PNG file (atomically).
    pub fn write_png(&self, path: &Path) -> Result<()> {
        spinetwin_core::atomic::write_bytes(path, &self.to_png())?;
        Ok(())
    }

    /// Nearest-neighbour enlargement by a whole `factor` (each pixel becomes a `factor` x
    /// `factor` square), so that small slices can be looked at without blurring voxels.
    pub fn enlarged(&self, factor: usize) -> RgbImage {
        let f = factor.max(1);
        let (w, h) = (self.width * f, self.height * f);
        let mut pixels = vec![0u8; w * h * 3];
        for r in 0..h {
            for c in 0..w {
                let s = 3 * ((r / f) * self.width + c / f);
                pixels[3 * (r * w + c)..3 * (r * w + c) + 3]
                    .copy_from_slice(&self.pixels[s..s + 3]);
            }
        }
        RgbImage {
            width: w,
            height: h,
            pixels,
        }
    }
}

/// A distinct, stable colour per label value (0 = none).
pub fn label_colour(label: u16) -> [u8; 3] {
    if label == 0 {
        return [0, 0, 0];
    }
    // Golden-angle hue steps give neighbouring labels clearly different colours.
    let h = (label as f64 * 137.508).rem_euclid(360.0) / 60.0;
    let x = 1.0 - (h % 2.0 - 1.0).abs();
    let (r, g, b) = match h as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// Renders the slice of `vol` in `plane` through the LPS point `through`, windowed, with an
/// optional label map blended on top (alpha 0.35). Pixels outside the volume are black.
pub fn render_slice<T: Voxel>(
    vol: &Volume<T>,
    plane: Plane,
    through: Vector3<f64>,
    window: Window,
    labels: Option<&Volume<u16>>,
) -> RgbImage {
    let (right, down) = plane.axes();
    let g = vol.grid();
    let px = g.spacing.iter().cloned().fold(f64::INFINITY, f64::min);
    let (lo, hi) = g.world_bounds();
    let span = |d: Vector3<f64>| (hi - lo).dot(&d.abs());
    let width = ((span(right) / px).round() as usize + 1).max(1);
    let height = ((span(down) / px).round() as usize + 1).max(1);
    // Top-left pixel: the corner of the bounding box that is most "left" and "up".
    let corner = |d: Vector3<f64>| {
        let mut c = Vector3::zeros();
        for a in 0..3 {
            c[a] = if d[a] > 0.0 {
                lo[a]
            } else if d[a] < 0.0 {
                hi[a]
            } else {
                0.0
            };
        }
        c
    };
    let start = corner(right) + corner(down);
    let normal = right.cross(&down);
    let base = start - normal * normal.dot(&start) + normal * normal.dot(&through);
    let mut pixels = vec![0u8; width * height * 3];
    for r in 0..height {
        for c in 0..width {
            let p = base + right * (c as f64 * px) + down * (r as f64 * px);
            let o = 3 * (r * width + c);
            if let Some(v) = vol.sample_trilinear(p) {
                let gval = window.grey(v) as f64;
                let mut rgb = [gval; 3];
                if let Some(l) = labels.and_then(|l| l.sample_nearest(p)).filter(|&l| l != 0) {
                    let col = label_colour(l);
                    for ch in 0..3 {
                        rgb[ch] = 0.65 * rgb[ch] + 0.35 * col[ch] as f64;
                    }
                }
                for ch in 0..3 {
                    pixels[o + ch] = rgb[ch].round() as u8;
                }
            }
        }
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn enlarged_repeats_each_pixel_in_a_square() {
        let img = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![1, 2, 3, 4, 5, 6],
        };
        let big = img.enlarged(3);
        assert_eq!((big.width, big.height), (6, 3));
        for r in 0..3 {
            for c in 0..6 {
                let want: &[u8] = if c < 3 { &[1, 2, 3] } else { &[4, 5, 6] };
                assert_eq!(&big.pixels[3 * (r * 6 + c)..3 * (r * 6 + c) + 3], want);
            }
        }
        assert_eq!(img.enlarged(0).pixels, img.pixels);
    }
    use super::*;
    use crate::volume::Grid;

    #[test]
    fn sagittal_slice_shows_superior_up_and_anterior_left() {
        // Bright voxels only in the anterior-superior corner (small y, large z).
        let g = Grid::axis_aligned([5, 20, 30], [1.0, 1.0, 1.0], Vector3::zeros()).unwrap();
        let v = Volume::from_fn(
            g,
            |_, j, k| if j < 5 && k >= 25 { 1000.0f32 } else { -1000.0 },
        );
        let img = render_slice(
            &v,
            Plane::Sagittal,
            Vector3::new(2.0, 0.0, 0.0),
            Window::BONE,
            None,
        );
        assert_eq!((img.width, img.height), (20, 30));
        let at = |c: usize, r: usize| img.pixels[3 * (r * img.width + c)];
        assert!(
            at(1, 1) > 200,
            "top-left should be bright (anterior-superior)"
        );
        assert_eq!(at(18, 28), 0);
        assert!(img.to_png().starts_with(b"\x89PNG"));
    }

    #[test]
    fn label_colours_differ_and_zero_is_black() {
        assert_eq!(label_colour(0), [0, 0, 0]);
        let cols: Vec<_> = (19..27).map(label_colour).collect();
        for a in 0..cols.len() {
            for b in a + 1..cols.len() {
                assert_ne!(cols[a], cols[b]);
            }
        }
    }
}
