//! PNG line charts: the moment-rotation curves that `simulate` and `demo` write beside
//! results.csv, for people who would rather look at a curve than read a table.
//!
//! Drawn with embedded-graphics (lines, markers and text in its built-in bitmap fonts, so
//! no system font is needed on a fresh machine) into imaging's RGB image, which encodes the
//! PNG. The axes, ticks and legend are laid out here: no Rust plotting crate draws text
//! without a font file from the system or shipped with the project.

use embedded_graphics::mono_font::ascii::{FONT_7X13, FONT_9X15_BOLD};
use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, Line, Polyline, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};
use spinetwin_imaging::preview::RgbImage;
use spinetwin_model::twin::CaseResult;
use std::convert::Infallible;

/// Colours of the series, in order (colour-blind-safe palette of Wong 2011, Nat Methods 8:441).
pub const PALETTE: [[u8; 3]; 7] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
    [0, 0, 0],
];

const WHITE: Rgb888 = Rgb888::new(255, 255, 255);
const INK: Rgb888 = Rgb888::new(40, 40, 40);
const GRID: Rgb888 = Rgb888::new(225, 225, 225);

/// One curve.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// (x, y) points in data units, drawn in order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: title, axis labels and curves.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Drawn above the plot.
    pub title: String,
    /// Below the horizontal axis.
    pub x_label: String,
    /// Above the vertical axis.
    pub y_label: String,
    /// The curves; colours follow [`PALETTE`].
    pub series: Vec<Series>,
}

/// Where the plot area lies in the picture and which data range it shows.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Plot area: left, top, right, bottom pixel.
    pub area: [i32; 4],
    /// Data range: x from, x to.
    pub x: (f64, f64),
    /// Data range: y from, y to.
    pub y: (f64, f64),
}

impl Frame {
    /// Pixel of a data point.
    pub fn pixel_of(self, x: f64, y: f64) -> Point {
        let [l, t, r, b] = self.area;
        let fx = (x - self.x.0) / (self.x.1 - self.x.0);
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        Point::new(
            (l as f64 + fx * (r - l) as f64).round() as i32,
            (b as f64 - fy * (b - t) as f64).round() as i32,
        )
    }
}

/// Tick values covering `[lo, hi]` with a 1-2-5 step, about `n` of them; returns the
/// rounded-out range and the ticks.
fn ticks(lo: f64, hi: f64, n: usize) -> ((f64, f64), Vec<f64>) {
    let (lo, hi) = if hi - lo < 1e-12 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let a = (lo / step).floor() * step;
    let b = (hi / step).ceil() * step;
    let count = ((b - a) / step).round() as usize;
    let t = (0..=count).map(|i| a + i as f64 * step).collect();
    ((a, b), t)
}

fn label(v: f64) -> String {
    if v.abs() < 1e-9 {
        "0".into()
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if (10.0 * v - (10.0 * v).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Draw target over an [`RgbImage`]; pixels outside the image are dropped.
struct Canvas<'a>(&'a mut RgbImage);

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.0.width as u32, self.0.height as u32)
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Rgb888>>>(
        &mut self,
        pixels: I,
    ) -> Result<(), Infallible> {
        let (w, h) = (self.0.width as i32, self.0.height as i32);
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                let i = 3 * (p.y as usize * self.0.width + p.x as usize);
                self.0.pixels[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

fn rgb(c: [u8; 3]) -> Rgb888 {
    Rgb888::new(c[0], c[1], c[2])
}

impl Chart {
    /// The frame the chart uses in a `width` x `height` picture.
    pub fn frame(&self, width: usize, height: usize) -> Frame {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for &(x, y) in pts.filter(|p| p.0.is_finite() && p.1.is_finite()) {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        let legend = 12 + 8 * self.series.iter().map(|s| s.name.len()).max().unwrap_or(0) as i32;
        Frame {
            area: [64, 44, width as i32 - 24 - legend, height as i32 - 48],
            x: ticks(x0, x1, 6).0,
            y: ticks(y0, y1, 6).0,
        }
    }

    /// Draws the chart into a new white `width` x `height` picture.
    pub fn render(&self, width: usize, height: usize) -> RgbImage {
        let mut img = RgbImage {
            width,
            height,
            pixels: vec![255; width * height * 3],
        };
        let f = self.frame(width, height);
        let mut c = Canvas(&mut img);
        let [l, t, r, b] = f.area;
        let small = MonoTextStyle::new(&FONT_7X13, INK);
        let centre = TextStyleBuilder::new()
            .alignment(Alignment::Center)
            .baseline(Baseline::Top)
            .build();
        let right = TextStyleBuilder::new()
            .alignment(Alignment::Right)
            .baseline(Baseline::Middle)
            .build();
        let thin = |col| PrimitiveStyle::with_stroke(col, 1);
        let _ = Rectangle::with_corners(Point::new(0, 0), Point::new(width as i32, height as i32))
            .into_styled(PrimitiveStyle::with_fill(WHITE))
            .draw(&mut c);
        // Grid and tick labels.
        for v in ticks(f.x.0, f.x.1, 6).1 {
            let p = f.pixel_of(v, f.y.0);
            let _ = Line::new(Point::new(p.x, t), Point::new(p.x, b))
                .into_styled(thin(GRID))
                .draw(&mut c);
            let _ = Text::with_text_style(&label(v), Point::new(p.x, b + 6), small, centre)
                .draw(&mut c);
        }
        for v in ticks(f.y.0, f.y.1, 6).1 {
            let p = f.pixel_of(f.x.0, v);
            let _ = Line::new(Point::new(l, p.y), Point::new(r, p.y))
                .into_styled(thin(if v.abs() < 1e-12 { INK } else { GRID }))
                .draw(&mut c);
            let _ =
                Text::with_text_style(&label(v), Point::new(l - 6, p.y), small, right).draw(&mut c);
        }
        let _ = Rectangle::with_corners(Point::new(l, t), Point::new(r, b))
            .into_styled(thin(INK))
            .draw(&mut c);
        // Titles.
        let _ = Text::with_text_style(
            &self.title,
            Point::new(width as i32 / 2, 8),
            MonoTextStyle::new(&FONT_9X15_BOLD, INK),
            centre,
        )
        .draw(&mut c);
        let _ = Text::with_text_style(&self.y_label, Point::new(l, t - 17), small, {
            TextStyleBuilder::new()
                .alignment(Alignment::Left)
                .baseline(Baseline::Top)
                .build()
        })
        .draw(&mut c);
        let _ = Text::with_text_style(
            &self.x_label,
            Point::new((l + r) / 2, b + 26),
            small,
            centre,
        )
        .draw(&mut c);
        // Curves, markers and legend.
        for (k, s) in self.series.iter().enumerate() {
            let col = rgb(PALETTE[k % PALETTE.len()]);
            let px: Vec<Point> = s
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| f.pixel_of(x, y))
                .collect();
            let _ = Polyline::new(&px)
                .into_styled(PrimitiveStyle::with_stroke(col, 2))
                .draw(&mut c);
            for p in &px {
                let _ = Circle::with_center(*p, 7)
                    .into_styled(PrimitiveStyle::with_fill(col))
                    .draw(&mut c);
            }
            let y = t + 8 + 18 * k as i32;
            let _ = Line::new(Point::new(r + 10, y), Point::new(r + 28, y))
                .into_styled(PrimitiveStyle::with_stroke(col, 3))
                .draw(&mut c);
            let _ = Text::with_text_style(&s.name, Point::new(r + 34, y), small, {
                TextStyleBuilder::new()
                    .alignment(Alignment::Left)
                    .baseline(Baseline::Middle)
                    .build()
            })
            .draw(&mut c);
        }
        img
    }
}

/// The moment-rotation chart of one load case: the main-plane rotation of each segment
/// against the applied moment. None for a case without a moment (standing).
pub fn moment_rotation(r: &CaseResult) -> Option<Chart> {
    let (motion, _) = r.case.moment?;
    let series: Vec<Series> = r
        .moment_rotation()
        .into_iter()
        .map(|(name, points)| Series { name, points })
        .collect();
    if series.is_empty() {
        return None; // not converged
    }
    let preload = if r.case.follower_n > 0.0 {
        format!(", {:.0} N follower load", r.case.follower_n)
    } else {
        String::new()
    };
    Some(Chart {
        title: format!(
            "{}{preload}: moment-rotation per segment",
            motion.name().replace('_', " ")
        ),
        x_label: "moment (N m)".into(),
        y_label: format!("{} (deg)", motion.name().replace('_', " ")),
        series,
    })
}

/// Picture size of one chart (pixels).
pub const CHART_SIZE: (usize, usize) = (720, 440);

/// Several charts side by side, `columns` to a row, each `CHART_SIZE`.
pub fn grid(charts: &[Chart], columns: usize) -> RgbImage {
    let (w, h) = CHART_SIZE;
    let cols = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(cols).max(1);
    let mut img = RgbImage {
        width: w * cols,
        height: h * rows,
        pixels: vec![255; w * cols * h * rows * 3],
    };
    for (i, ch) in charts.iter().enumerate() {
        let one = ch.render(w, h);
        let (r0, c0) = ((i / cols) * h, (i % cols) * w);
        for y in 0..h {
            let dst = 3 * ((r0 + y) * img.width + c0);
            img.pixels[dst..dst + 3 * w].copy_from_slice(&one.pixels[3 * y * w..3 * (y + 1) * w]);
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(img: &RgbImage, p: Point) -> [u8; 3] {
        let i = 3 * (p.y as usize * img.width + p.x as usize);
        [img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]]
    }

    /// True when the pixel at `p` or one of its 8 neighbours has colour `c` (a 2-pixel line
    /// drawn through a point may miss the point's rounded pixel by one).
    fn near(img: &RgbImage, p: Point, c: [u8; 3]) -> bool {
        (-1..=1).any(|dy| (-1..=1).any(|dx| pixel(img, p + Point::new(dx, dy)) == c))
    }

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        let ((a, b), t) = ticks(0.0, 7.5, 6);
        assert_eq!((a, b), (0.0, 8.0));
        assert_eq!(t, vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        let ((a, b), t) = ticks(-1.3, 4.2, 6);
        assert_eq!((a, b), (-2.0, 5.0));
        assert_eq!(t.len(), 8);
        let ((a, b), _) = ticks(0.0, 0.0, 6);
        assert!(a < 0.0 && b > 0.0);
    }

    #[test]
    fn curves_are_drawn_where_their_data_lie() {
        let chart = Chart {
            title: "test".into(),
            x_label: "moment (N m)".into(),
            y_label: "flexion (deg)".into(),
            series: vec![
                Series {
                    name: "L4-L5".into(),
                    points: vec![(0.0, 0.0), (2.5, 1.0), (7.5, 3.0)],
                },
                Series {
                    name: "L5-S1".into(),
                    points: vec![(0.0, 0.0), (2.5, -1.0), (7.5, -2.0)],
                },
            ],
        };
        let (w, h) = CHART_SIZE;
        let img = chart.render(w, h);
        assert_eq!(img.pixels.len(), w * h * 3);
        let f = chart.frame(w, h);
        assert_eq!((f.x.0, f.x.1), (0.0, 8.0));
        assert!(f.y.0 <= -2.0 && f.y.1 >= 3.0);
        // Each curve passes through its own points and the midpoint of each line piece, in
        // its own colour; the other curve's points are not in that colour.
        assert!(near(&img, f.pixel_of(5.0, 2.0), PALETTE[0]));
        assert_eq!(pixel(&img, f.pixel_of(7.5, 3.0)), PALETTE[0]);
        assert!(near(&img, f.pixel_of(5.0, -1.5), PALETTE[1]));
        assert!(!near(&img, f.pixel_of(5.0, 1.0), PALETTE[0]));
        assert!(!near(&img, f.pixel_of(5.0, -1.5), PALETTE[0]));
        // Away from every curve, inside the plot, the picture is background or grid.
        let p = pixel(&img, f.pixel_of(1.0, -1.7));
        assert!(p == [255, 255, 255] || p == [225, 225, 225], "{p:?}");
        // The PNG decodes to the same size.
        let png = img.to_png();
        let dec = png::Decoder::new(std::io::Cursor::new(png));
        let reader = dec.read_info().unwrap();
        assert_eq!(reader.info().width as usize, w);
        assert_eq!(reader.info().height as usize, h);
    }

    #[test]
    fn a_grid_places_each_chart_in_its_cell() {
        let one = |v: f64| Chart {
            title: "c".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "s".into(),
                points: vec![(0.0, 0.0), (1.0, v)],
            }],
        };
        let charts = [one(1.0), one(2.0), one(3.0)];
        let g = grid(&charts, 2);
        assert_eq!((g.width, g.height), (2 * CHART_SIZE.0, 2 * CHART_SIZE.1));
        // The third chart sits in the second row, first column, identical to its own render.
        let alone = charts[2].render(CHART_SIZE.0, CHART_SIZE.1);
        let y = 200;
        let row = 3 * ((CHART_SIZE.1 + y) * g.width);
        assert_eq!(
            &g.pixels[row..row + 3 * CHART_SIZE.0],
            &alone.pixels[3 * y * CHART_SIZE.0..3 * (y + 1) * CHART_SIZE.0]
        );
    }
}
