//! Off-screen pictures of triangle surfaces and rods: an orthographic z-buffer rasteriser
//! with per-vertex colours and normals (Gouraud, two-sided Lambert light), 2x2 supersampled.
//!
//! Written here because reports need still pictures on headless machines without a GPU or
//! a window system: the GPU renderers on crates.io (wgpu and those built on it) need a
//! device, and the software rasterisers there draw 2D paths (tiny-skia), not depth-tested
//! 3D triangles. What is needed is small: orthographic projection, a depth buffer and
//! shading.
//!
//! Coordinates are the caller's (patient LPS mm in spinetwin); a [`View`] gives the screen
//! axes. The viewer looks along `-(right x up)`: a point with a larger component along
//! `right x up` is nearer.

use crate::SurfaceMesh;
use spinetwin_imaging::preview::RgbImage;

/// An orthographic view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// World point at the image centre.
    pub centre: [f64; 3],
    /// Unit world direction drawn to the right.
    pub right: [f64; 3],
    /// Unit world direction drawn upwards (orthogonal to `right`).
    pub up: [f64; 3],
    /// Scale (world units per pixel).
    pub units_per_pixel: f64,
    /// Image width (pixels).
    pub width: usize,
    /// Image height (pixels).
    pub height: usize,
}

impl View {
    /// The view along the given screen axes that fits the box `lo..hi` into a
    /// `width x height` image with `margin` (fraction of the image, e.g. 0.05) free on every
    /// side.
    pub fn fit(
        lo: [f64; 3],
        hi: [f64; 3],
        right: [f64; 3],
        up: [f64; 3],
        width: usize,
        height: usize,
        margin: f64,
    ) -> View {
        let centre = [0, 1, 2].map(|k| 0.5 * (lo[k] + hi[k]));
        // The box's extent along each screen axis (all 8 corners projected).
        let mut ext = [0.0f64; 2];
        for c in 0..8 {
            let p = [0, 1, 2].map(|k| if c >> k & 1 == 1 { hi[k] } else { lo[k] });
            let d = sub(p, centre);
            ext[0] = ext[0].max(dot(d, right).abs());
            ext[1] = ext[1].max(dot(d, up).abs());
        }
        let usable = (1.0 - 2.0 * margin).max(0.1);
        let sx = 2.0 * ext[0] / (usable * width as f64);
        let sy = 2.0 * ext[1] / (usable * height as f64);
        View {
            centre,
            right,
            up,
            units_per_pixel: sx.max(sy).max(1e-9),
            width,
            height,
        }
    }

    /// Screen position (pixels, x right, y down) and depth (larger = nearer) of `p`.
    pub fn project(&self, p: [f64; 3]) -> [f64; 3] {
        let d = sub(p, self.centre);
        let toward = cross(self.right, self.up);
        [
            self.width as f64 / 2.0 + dot(d, self.right) / self.units_per_pixel,
            self.height as f64 / 2.0 - dot(d, self.up) / self.units_per_pixel,
            dot(d, toward),
        ]
    }
}

/// A triangle with a colour (RGB, 0..1) and a normal at each corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Triangle {
    /// Corners.
    pub p: [[f64; 3]; 3],
    /// Colour at each corner.
    pub colour: [[f32; 3]; 3],
    /// Normal at each corner (need not be unit; the sign does not matter: both sides are
    /// lit).
    pub normal: [[f64; 3]; 3],
}

/// A solid cylinder drawn as a shaded capsule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rod {
    /// Axis ends.
    pub a: [f64; 3],
    /// Second end.
    pub b: [f64; 3],
    /// Radius (world units).
    pub radius: f64,
    /// Colour (RGB, 0..1).
    pub colour: [f32; 3],
}

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct Scene {
    /// Triangles.
    pub triangles: Vec<Triangle>,
    /// Rods.
    pub rods: Vec<Rod>,
}

impl Scene {
    /// Adds a surface with smooth vertex normals, coloured per vertex by `colour`.
    pub fn add_mesh(&mut self, mesh: &SurfaceMesh, colour: impl Fn(usize) -> [f32; 3]) {
        let normals = mesh.vertex_normals();
        for t in &mesh.triangles {
            let i = t.map(|v| v as usize);
            self.triangles.push(Triangle {
                p: i.map(|v| mesh.vertices[v]),
                colour: i.map(&colour),
                normal: i.map(|v| normals[v]),
            });
        }
    }

    /// Adds a flat polygon (convex, corners in order) of one normal, coloured per corner.
    pub fn add_polygon(&mut self, p: &[[f64; 3]], colour: &[[f32; 3]]) {
        if p.len() < 3 || colour.len() != p.len() {
            return;
        }
        let mut n = [0.0; 3];
        for k in 1..p.len() - 1 {
            n = add(n, cross(sub(p[k], p[0]), sub(p[k + 1], p[0])));
        }
        for k in 1..p.len() - 1 {
            self.triangles.push(Triangle {
                p: [p[0], p[k], p[k + 1]],
                colour: [colour[0], colour[k], colour[k + 1]],
                normal: [n; 3],
            });
        }
    }

    /// Bounding box of everything in the scene (`None` when empty).
    pub fn bounds(&self) -> Option<([f64; 3], [f64; 3])> {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        let mut grow = |p: [f64; 3], r: f64| {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k] - r);
                hi[k] = hi[k].max(p[k] + r);
            }
        };
        for t in &self.triangles {
            t.p.iter().for_each(|&p| grow(p, 0.0));
        }
        for r in &self.rods {
            grow(r.a, r.radius);
            grow(r.b, r.radius);
        }
        lo[0].is_finite().then_some((lo, hi))
    }
}

/// Supersampling factor per axis.
const SS: usize = 2;
/// Share of the light that reaches every surface whatever its orientation.
const AMBIENT: f32 = 0.3;

/// Draws `scene` in `view` on a `background` (RGB bytes).
pub fn render(scene: &Scene, view: &View, background: [u8; 3]) -> RgbImage {
    if view.width == 0 || view.height == 0 {
        return RgbImage {
            width: view.width,
            height: view.height,
            pixels: Vec::new(),
        };
    }
    let (w, h) = (view.width * SS, view.height * SS);
    let fine = View {
        width: w,
        height: h,
        units_per_pixel: view.units_per_pixel / SS as f64,
        ..*view
    };
    let mut depth = vec![f64::NEG_INFINITY; w * h];
    let mut colour = vec![[0.0f32; 3]; w * h];
    let toward = normalize(cross(view.right, view.up));
    // Light from the viewer's upper left.
    let light = normalize(add(
        add(scale(view.up, 0.5), scale(view.right, -0.35)),
        toward,
    ));
    let shade = |n: [f64; 3]| -> f32 {
        let n = normalize(n);
        AMBIENT + (1.0 - AMBIENT) * dot(n, light).abs() as f32
    };
    for t in &scene.triangles {
        let q = t.p.map(|p| fine.project(p));
        let lit: [[f32; 3]; 3] =
            std::array::from_fn(|k| t.colour[k].map(|c| c * shade(t.normal[k])));
        let area = edge(q[0], q[1], q[2]);
        if area.abs() < 1e-12 {
            continue;
        }
        // Pixel bounding box along screen axis k: (first pixel, last pixel edge).
        let span = |k: usize| {
            let lo = q.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
            let hi = q.iter().map(|p| p[k]).fold(f64::NEG_INFINITY, f64::max);
            (lo.floor().max(0.0) as usize, hi.ceil())
        };
        let ((x0, x1), (y0, y1)) = (span(0), span(1));
        if x1 < 0.0 || y1 < 0.0 {
            continue;
        }
        let x1 = (x1 as usize).min(w - 1);
        let y1 = (y1 as usize).min(h - 1);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let s = [x as f64 + 0.5, y as f64 + 0.5, 0.0];
                let b = [
                    edge(q[1], q[2], s) / area,
                    edge(q[2], q[0], s) / area,
                    edge(q[0], q[1], s) / area,
                ];
                if b.iter().any(|&v| v < -1e-9) {
                    continue;
                }
                let z = b[0] * q[0][2] + b[1] * q[1][2] + b[2] * q[2][2];
                let i = y * w + x;
                if z > depth[i] {
                    depth[i] = z;
                    colour[i] = std::array::from_fn(|c| {
                        b[0] as f32 * lit[0][c] + b[1] as f32 * lit[1][c] + b[2] as f32 * lit[2][c]
                    });
                }
            }
        }
    }
    for r in &scene.rods {
        draw_rod(r, &fine, light, toward, &mut depth, &mut colour);
    }
    // Box filter down to the output size.
    let mut pixels = Vec::with_capacity(view.width * view.height * 3);
    for y in 0..view.height {
        for x in 0..view.width {
            let mut acc = [0.0f32; 3];
            for dy in 0..SS {
                for dx in 0..SS {
                    let i = (y * SS + dy) * w + x * SS + dx;
                    let c = if depth[i].is_finite() {
                        colour[i]
                    } else {
                        background.map(|b| b as f32 / 255.0)
                    };
                    for k in 0..3 {
                        acc[k] += c[k];
                    }
                }
            }
            for a in acc {
                pixels.push((a / (SS * SS) as f32 * 255.0).round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    RgbImage {
        width: view.width,
        height: view.height,
        pixels,
    }
}

/// A rod as a capsule: every pixel within the projected radius of the projected axis,
/// shaded with the cylinder's normal there.
fn draw_rod(
    r: &Rod,
    view: &View,
    light: [f64; 3],
    toward: [f64; 3],
    depth: &mut [f64],
    colour: &mut [[f32; 3]],
) {
    let (w, h) = (view.width, view.height);
    let a = view.project(r.a);
    let b = view.project(r.b);
    let rad = r.radius / view.units_per_pixel;
    let x0 = (a[0].min(b[0]) - rad).floor().max(0.0) as usize;
    let y0 = (a[1].min(b[1]) - rad).floor().max(0.0) as usize;
    let x1 = (a[0].max(b[0]) + rad).ceil();
    let y1 = (a[1].max(b[1]) + rad).ceil();
    if x1 < 0.0 || y1 < 0.0 || rad <= 0.0 {
        return;
    }
    let x1 = (x1 as usize).min(w - 1);
    let y1 = (y1 as usize).min(h - 1);
    let d = [b[0] - a[0], b[1] - a[1]];
    let len2 = d[0] * d[0] + d[1] * d[1];
    // World directions of the screen axes, to turn a screen offset into a normal.
    let sx = view.right;
    let sy = scale(view.up, -1.0);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let s = [x as f64 + 0.5 - a[0], y as f64 + 0.5 - a[1]];
            let t = if len2 > 0.0 {
                ((s[0] * d[0] + s[1] * d[1]) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let off = [s[0] - t * d[0], s[1] - t * d[1]];
            let dist2 = off[0] * off[0] + off[1] * off[1];
            if dist2 > rad * rad {
                continue;
            }
            let bulge = (rad * rad - dist2).sqrt();
            let z = a[2] + t * (b[2] - a[2]) + bulge * view.units_per_pixel;
            let i = y * w + x;
            if z > depth[i] {
                depth[i] = z;
                let n = add(
                    add(scale(sx, off[0] / rad), scale(sy, off[1] / rad)),
                    scale(toward, bulge / rad),
                );
                let f = AMBIENT + (1.0 - AMBIENT) * dot(normalize(n), light).max(0.0) as f32;
                colour[i] = r.colour.map(|c| c * f);
            }
        }
    }
}

/// The colour of `t` in 0..1 on the stress scale of the pictures: dark blue (low) through
/// cyan, green and yellow to red (high); values outside are clamped.
pub fn colour_scale(t: f64) -> [f32; 3] {
    const STOPS: [[f32; 3]; 6] = [
        [0.10, 0.12, 0.55],
        [0.10, 0.45, 0.90],
        [0.15, 0.78, 0.75],
        [0.45, 0.85, 0.30],
        [0.98, 0.82, 0.15],
        [0.85, 0.12, 0.08],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = (x - k as f64) as f32;
    std::array::from_fn(|c| STOPS[k][c] * (1.0 - f) + STOPS[k + 1][c] * f)
}

fn edge(a: [f64; 3], b: [f64; 3], p: [f64; 3]) -> f64 {
    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    a.map(|v| v * s)
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = dot(a, a).sqrt();
    if n > 0.0 {
        scale(a, 1.0 / n)
    } else {
        [0.0, 0.0, 1.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: [u8; 3] = [255, 255, 255];

    fn pixel(img: &RgbImage, x: usize, y: usize) -> [u8; 3] {
        let i = (y * img.width + x) * 3;
        [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
    }

    /// Front view: x right, z up, the viewer on the -y side looking along +y.
    fn front(width: usize, height: usize, upp: f64) -> View {
        View {
            centre: [0.0; 3],
            right: [1.0, 0.0, 0.0],
            up: [0.0, 0.0, 1.0],
            units_per_pixel: upp,
            width,
            height,
        }
    }

    fn square(y: f64, half: f64, colour: [f32; 3]) -> Scene {
        let mut s = Scene::default();
        s.add_polygon(
            &[
                [-half, y, -half],
                [half, y, -half],
                [half, y, half],
                [-half, y, half],
            ],
            &[colour; 4],
        );
        s
    }

    #[test]
    fn projection_axes_and_depth() {
        let v = front(100, 80, 0.5);
        // right x up = x x z = -y: the viewer is on the -y side.
        let p = v.project([10.0, -3.0, 5.0]);
        assert_eq!(p, [70.0, 30.0, 3.0]);
    }

    #[test]
    fn square_covers_its_projected_area_and_nothing_else() {
        // A 20 x 20 square at 1 unit per pixel in a 40 x 40 image: pixels 10..30.
        let img = render(
            &square(0.0, 10.0, [1.0, 0.0, 0.0]),
            &front(40, 40, 1.0),
            WHITE,
        );
        let mut red = 0;
        for y in 0..40 {
            for x in 0..40 {
                let c = pixel(&img, x, y);
                let inside = (10..30).contains(&x) && (10..30).contains(&y);
                if inside {
                    assert!(c[0] > 100 && c[1] == 0 && c[2] == 0, "({x},{y}) {c:?}");
                    red += 1;
                } else {
                    assert_eq!(c, WHITE, "({x},{y})");
                }
            }
        }
        assert_eq!(red, 400);
        // Facing the viewer, lit at 1 - AMBIENT times the cosine to the light plus ambient.
        let c = pixel(&img, 20, 20)[0] as f32 / 255.0;
        assert!(c > AMBIENT + 0.3 && c < 1.0, "{c}");
    }

    #[test]
    fn nearer_surface_hides_the_farther_one_whatever_the_order() {
        let v = front(20, 20, 1.0);
        for near_first in [true, false] {
            let near = square(-5.0, 5.0, [0.0, 1.0, 0.0]);
            let far = square(5.0, 8.0, [0.0, 0.0, 1.0]);
            let mut s = Scene::default();
            let (a, b) = if near_first { (near, far) } else { (far, near) };
            s.triangles.extend(a.triangles);
            s.triangles.extend(b.triangles);
            let img = render(&s, &v, WHITE);
            let c = pixel(&img, 10, 10);
            assert!(c[1] > 0 && c[2] == 0, "centre {c:?}");
            // Outside the near square the far one shows.
            let c = pixel(&img, 3, 10);
            assert!(c[2] > 0 && c[1] == 0, "edge {c:?}");
        }
    }

    #[test]
    fn rod_has_its_width_and_is_brightest_on_the_lit_side() {
        let mut s = Scene::default();
        s.rods.push(Rod {
            a: [-8.0, 0.0, 0.0],
            b: [8.0, 0.0, 0.0],
            radius: 3.0,
            colour: [1.0, 1.0, 1.0],
        });
        let img = render(&s, &front(40, 40, 1.0), [0, 0, 0]);
        // Column through the middle: 6 pixels of rod centred on row 20.
        let lit: Vec<usize> = (0..40).filter(|&y| pixel(&img, 20, y)[0] > 0).collect();
        assert_eq!(lit.first(), Some(&17));
        assert_eq!(lit.last(), Some(&22));
        // The light comes from above: the upper half is brighter than the lower.
        assert!(pixel(&img, 20, 18)[0] > pixel(&img, 20, 21)[0]);
        // Rounded ends: nothing beyond the end cap.
        assert_eq!(pixel(&img, 20 + 12, 20), [0, 0, 0]);
    }

    #[test]
    fn fit_keeps_the_box_inside_the_margin() {
        let v = View::fit(
            [-50.0, -10.0, 0.0],
            [50.0, 10.0, 200.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0],
            300,
            400,
            0.05,
        );
        for p in [[-50.0, 0.0, 0.0], [50.0, 0.0, 200.0]] {
            let q = v.project(p);
            assert!(q[0] >= 15.0 - 1e-9 && q[0] <= 285.0 + 1e-9, "{q:?}");
            assert!(q[1] >= 20.0 - 1e-9 && q[1] <= 380.0 + 1e-9, "{q:?}");
        }
        // Height limits: 200 units over 360 pixels.
        assert!((v.units_per_pixel - 200.0 / 360.0).abs() < 1e-12);
    }

    #[test]
    fn colour_scale_runs_from_blue_to_red_and_clamps() {
        let lo = colour_scale(0.0);
        let hi = colour_scale(1.0);
        assert!(lo[2] > lo[0] && hi[0] > hi[2]);
        assert_eq!(colour_scale(-1.0), lo);
        assert_eq!(colour_scale(2.0), hi);
        assert_eq!(colour_scale(f64::NAN), lo);
        // Continuous between stops.
        let a = colour_scale(0.4 - 1e-6);
        let b = colour_scale(0.4 + 1e-6);
        assert!((0..3).all(|c| (a[c] - b[c]).abs() < 1e-4));
    }
}
