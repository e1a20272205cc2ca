//! Signed-distance-like primitives (mm; negative inside). Most are first-order
//! approximations of the true distance (exact on and near the surface), which is all the
//! cortical shell thickness and the partial-volume sampling need.

use nalgebra::{Matrix3, Vector2, Vector3};

pub(crate) type V3 = Vector3<f64>;
pub(crate) type V2 = Vector2<f64>;

/// Smooth union (polynomial smooth minimum) with blend width `k` mm.
#[inline]
pub(crate) fn smin(a: f64, b: f64, k: f64) -> f64 {
    if k <= 0.0 {
        return a.min(b);
    }
    let h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0);
    b + (a - b) * h - k * h * (1.0 - h)
}

/// Ellipse centred at the origin with semi-axes `a`, `b` (distance scaled by the gradient
/// of the implicit function, so the value is close to the Euclidean distance near the rim).
#[inline]
pub(crate) fn ellipse(x: f64, y: f64, a: f64, b: f64) -> f64 {
    let (u, v) = (x / a, y / b);
    let k = (u * u + v * v).sqrt();
    if k < 1e-9 {
        return -a.min(b);
    }
    let gx = u / (a * k);
    let gy = v / (b * k);
    let g = (gx * gx + gy * gy).sqrt().max(1e-9);
    let d = (k - 1.0) / g;
    // Deep inside the gradient estimate degrades; never report deeper than the short axis.
    d.max(-a.min(b))
}

/// Ellipsoid with semi-axes `r` (same gradient-scaled approximation as [`ellipse`]).
#[inline]
pub(crate) fn ellipsoid(p: V3, r: V3) -> f64 {
    let u = p.component_div(&r);
    let k = u.norm();
    if k < 1e-9 {
        return -r.min();
    }
    let g = u.component_div(&r) / k;
    ((k - 1.0) / g.norm().max(1e-9)).max(-r.min())
}

/// Distance from `p` to the segment `a`-`b` in 2D, and the segment parameter in 0..=1.
#[inline]
pub(crate) fn seg2(p: V2, a: V2, b: V2) -> (f64, f64) {
    let ab = b - a;
    let t = ((p - a).dot(&ab) / ab.norm_squared().max(1e-12)).clamp(0.0, 1.0);
    ((p - (a + ab * t)).norm(), t)
}

/// Intersection of two SDFs with rounded inner corner of radius `r` (exact outside).
#[inline]
pub(crate) fn round_max(a: f64, b: f64, r: f64) -> f64 {
    let (qa, qb) = (a + r, b + r);
    let out = (qa.max(0.0).powi(2) + qb.max(0.0).powi(2)).sqrt();
    out + qa.max(qb).min(0.0) - r
}

/// An oriented box with rounded edges: centre, orthonormal axes (columns), half sizes, and
/// edge radius.
#[derive(Debug, Clone)]
pub(crate) struct RoundBox {
    pub centre: V3,
    /// Columns: the box axes in the enclosing frame.
    pub axes: Matrix3<f64>,
    pub half: V3,
    pub radius: f64,
}

impl RoundBox {
    #[inline]
    pub(crate) fn sd(&self, p: V3) -> f64 {
        let l = self.axes.transpose() * (p - self.centre);
        let q = l.abs() - (self.half - V3::repeat(self.radius));
        let outside = q.sup(&V3::zeros()).norm();
        outside + q.max().min(0.0) - self.radius
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_are_zero_on_their_surface() {
        assert!(ellipse(20.0, 0.0, 20.0, 10.0).abs() < 1e-9);
        assert!((ellipse(22.0, 0.0, 20.0, 10.0) - 2.0).abs() < 1e-6);
        assert!((ellipse(0.0, 12.0, 20.0, 10.0) - 2.0).abs() < 1e-6);
        assert!(ellipse(0.0, 0.0, 20.0, 10.0) < 0.0);
        let r = V3::new(5.0, 3.0, 2.0);
        assert!(ellipsoid(V3::new(0.0, 0.0, 2.0), r).abs() < 1e-9);
        assert!((smin(1.0, 5.0, 0.5) - 1.0).abs() < 1e-12);
        assert!(smin(1.0, 1.0, 2.0) < 1.0);
        let b = RoundBox {
            centre: V3::zeros(),
            axes: Matrix3::identity(),
            half: V3::new(3.0, 2.0, 1.0),
            radius: 0.5,
        };
        assert!(b.sd(V3::new(3.0, 0.0, 0.0)).abs() < 1e-12);
        assert!((b.sd(V3::new(4.0, 0.0, 0.0)) - 1.0).abs() < 1e-12);
        let (d, t) = seg2(V2::new(1.0, 1.0), V2::new(0.0, 0.0), V2::new(2.0, 0.0));
        assert!((d - 1.0).abs() < 1e-12 && (t - 0.5).abs() < 1e-12);
        assert!((round_max(-1.0, -3.0, 0.5) + 1.0).abs() < 1e-12);
    }
}
