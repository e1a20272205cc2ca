//! Corotational 3D beam between two rigid bodies.
//!
//! Kinematics after Battini & Pacoste (2002), "Co-rotational beam elements with warping
//! effects in instability problems", CMAME 191, 1755-1789 (sec. 3), itself a variant of
//! Crisfield (1990), "A consistent co-rotational formulation for non-linear, three-dimensional,
//! beam-elements", CMAME 81, 131-150:
//!
//! * the element frame `R_r = [r1 r2 r3]` has `r1` along the current chord; `r3 = r1 x q /
//!   |r1 x q|`, `r2 = r3 x r1`, where `q` is the mean of the two end triads' y axes (so the
//!   frame follows the mean twist of the ends rather than one end);
//! * the end triads are `R_body R_0` (`R_0` the initial element frame);
//! * the local deformations are the stretch `u = l - l0` and the local end rotations
//!   `theta_i = log(R_r^T R_body,i R_0)`;
//! * a linear (Euler-Bernoulli, or Timoshenko with a shear area) strain energy in these seven
//!   numbers; rigid-body motions leave them unchanged, so the element is objective.
//!
//! Instead of Battini's closed-form `B` and geometric stiffness matrices, the gradient and
//! the Hessian of the energy with respect to the end DOFs are taken by forward automatic
//! differentiation with hyper-dual numbers (Fike & Alonso 2011, AIAA 2011-886): both are
//! exact to rounding, the tangent is the consistent one without hand-derived terms to get
//! wrong, and the cost (144 evaluations of a few hundred operations per beam) is negligible
//! next to the solids. The end DOFs are the end point's displacement and a spatial rotation
//! increment (`T <- exp(w) T`), the same parametrisation as the rigid bodies; because spatial
//! increments do not commute, the mixed derivative is taken in the order the solver applies
//! them (`exp(w_j) exp(w_k) T`), which makes the tangent the exact derivative of the force
//! under the solver's update (not symmetric away from equilibrium).

use std::ops::{Add, Div, Mul, Neg, Sub};

use super::assemble::{Active, Asm};
use super::kin::{skew, DofMap, Slot, State, M3, V3};
use super::{Beam, BeamState, Model};
use crate::FemError;

/// Hyper-dual number `r + a e1 + b e2 + ab e1 e2` with `e1^2 = e2^2 = 0`: one evaluation
/// carries a function's value, its derivatives along two directions and the mixed second
/// derivative.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Hd {
    pub(super) r: f64,
    pub(super) a: f64,
    pub(super) b: f64,
    pub(super) ab: f64,
}

impl Hd {
    pub(super) fn c(r: f64) -> Hd {
        Hd {
            r,
            ..Default::default()
        }
    }

    /// `g(self)` from `g`, `g'` and `g''` at the real part.
    fn chain(self, g0: f64, g1: f64, g2: f64) -> Hd {
        Hd {
            r: g0,
            a: g1 * self.a,
            b: g1 * self.b,
            ab: g1 * self.ab + g2 * self.a * self.b,
        }
    }

    fn sqrt(self) -> Hd {
        let s = self.r.sqrt();
        self.chain(s, 0.5 / s, -0.25 / (s * self.r))
    }

    fn atan(self) -> Hd {
        let x = self.r;
        let d = 1.0 / (1.0 + x * x);
        self.chain(x.atan(), d, -2.0 * x * d * d)
    }

    fn recip(self) -> Hd {
        let i = 1.0 / self.r;
        self.chain(i, -i * i, 2.0 * i * i * i)
    }
}

impl Add for Hd {
    type Output = Hd;
    fn add(self, o: Hd) -> Hd {
        Hd {
            r: self.r + o.r,
            a: self.a + o.a,
            b: self.b + o.b,
            ab: self.ab + o.ab,
        }
    }
}

impl Sub for Hd {
    type Output = Hd;
    fn sub(self, o: Hd) -> Hd {
        self + (-o)
    }
}

impl Neg for Hd {
    type Output = Hd;
    fn neg(self) -> Hd {
        Hd {
            r: -self.r,
            a: -self.a,
            b: -self.b,
            ab: -self.ab,
        }
    }
}

impl Mul for Hd {
    type Output = Hd;
    fn mul(self, o: Hd) -> Hd {
        Hd {
            r: self.r * o.r,
            a: self.r * o.a + self.a * o.r,
            b: self.r * o.b + self.b * o.r,
            ab: self.r * o.ab + self.ab * o.r + self.a * o.b + self.b * o.a,
        }
    }
}

impl Mul<f64> for Hd {
    type Output = Hd;
    fn mul(self, s: f64) -> Hd {
        Hd {
            r: self.r * s,
            a: self.a * s,
            b: self.b * s,
            ab: self.ab * s,
        }
    }
}

impl Div for Hd {
    type Output = Hd;
    #[allow(clippy::suspicious_arithmetic_impl)]
    fn div(self, o: Hd) -> Hd {
        self * o.recip()
    }
}

pub(super) type Hv = [Hd; 3];
/// Row-major 3x3.
pub(super) type Hm = [[Hd; 3]; 3];

pub(super) fn sub(a: &Hv, b: &Hv) -> Hv {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(super) fn scale(a: &Hv, s: Hd) -> Hv {
    [a[0] * s, a[1] * s, a[2] * s]
}

pub(super) fn dot(a: &Hv, b: &Hv) -> Hd {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub(super) fn cross(a: &Hv, b: &Hv) -> Hv {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Rotation vector of a rotation matrix (the principal logarithm, angle < pi).
pub(super) fn log_rot(m: &Hm) -> Hv {
    // sin(angle) times the axis, and cos(angle).
    let w = [
        (m[2][1] - m[1][2]) * 0.5,
        (m[0][2] - m[2][0]) * 0.5,
        (m[1][0] - m[0][1]) * 0.5,
    ];
    let c = (m[0][0] + m[1][1] + m[2][2] - Hd::c(1.0)) * 0.5;
    let s2 = dot(&w, &w);
    // angle / sin(angle) as a function of s2 = sin^2: a series near zero, where the square
    // root (and its derivatives) would be singular; asin(s)/s = 1 + s^2/6 + 3 s^4/40 + ...
    let f = if s2.r < 1e-12 && c.r > 0.0 {
        Hd::c(1.0) + s2 * (1.0 / 6.0) + s2 * s2 * (3.0 / 40.0)
    } else {
        let s = s2.sqrt();
        let angle = if c.r > 0.0 {
            (s / c).atan()
        } else {
            Hd::c(std::f64::consts::FRAC_PI_2) - (c / s).atan()
        };
        angle / s
    };
    scale(&w, f)
}

/// The element's constant data.
pub(crate) struct Elem {
    /// Initial length (mm).
    l0: f64,
    /// Initial frame (columns: local x, y, z in global coordinates).
    r0: M3,
    /// Axial stiffness `E A / l0` (N/mm).
    ka: f64,
    /// Torsional stiffness `G J / l0` (N mm/rad).
    kt: f64,
    /// Bending about local y and z: `E I / (l0 (1 + phi))` and `phi = 12 E I / (G A_s l0^2)`.
    kb: [(f64, f64); 2],
}

impl Elem {
    /// Constant data; the beam is validated beforehand.
    pub fn new(beam: &Beam) -> Elem {
        let d = V3::from(beam.b.at) - V3::from(beam.a.at);
        let l0 = d.norm();
        let x = d / l0;
        let o = V3::from(beam.orientation);
        let y = (o - x * x.dot(&o)).normalize();
        let z = x.cross(&y);
        let s = &beam.section;
        let g = beam.e / (2.0 * (1.0 + beam.nu));
        let bend = |i: f64| {
            let phi = s
                .shear_area
                .map_or(0.0, |a_s| 12.0 * beam.e * i / (g * a_s * l0 * l0));
            (beam.e * i / (l0 * (1.0 + phi)), phi)
        };
        Elem {
            l0,
            r0: M3::from_columns(&[x, y, z]),
            ka: beam.e * s.area / l0,
            kt: g * s.j / l0,
            kb: [bend(s.iy), bend(s.iz)],
        }
    }

    /// Stretch, element frame (row-major, columns `r1 r2 r3`) and local end rotations for
    /// end positions `x` and end triads `t`.
    fn local(&self, xa: &Hv, xb: &Hv, ta: &Hm, tb: &Hm) -> (Hd, Hm, Hv, Hv) {
        let d = sub(xb, xa);
        let l = dot(&d, &d).sqrt();
        let r1 = scale(&d, l.recip());
        let q = [
            (ta[0][1] + tb[0][1]) * 0.5,
            (ta[1][1] + tb[1][1]) * 0.5,
            (ta[2][1] + tb[2][1]) * 0.5,
        ];
        let r3 = cross(&r1, &q);
        let r3 = scale(&r3, dot(&r3, &r3).sqrt().recip());
        let r2 = cross(&r3, &r1);
        let rr: Hm = std::array::from_fn(|i| [r1[i], r2[i], r3[i]]);
        // R_r^T T.
        let rel = |t: &Hm| -> Hm {
            std::array::from_fn(|i| {
                std::array::from_fn(|j| {
                    rr[0][i] * t[0][j] + rr[1][i] * t[1][j] + rr[2][i] * t[2][j]
                })
            })
        };
        (l - Hd::c(self.l0), rr, log_rot(&rel(ta)), log_rot(&rel(tb)))
    }

    /// Strain energy of the local deformations.
    fn energy(&self, u: Hd, ta: &Hv, tb: &Hv) -> Hd {
        let tw = tb[0] - ta[0];
        let mut e = u * u * (0.5 * self.ka) + tw * tw * (0.5 * self.kt);
        // Local bending stiffness with end rotations only (the chord carries no transverse
        // displacement): M_a = k ((4 + phi) t_a + (2 - phi) t_b).
        for (c, &(k, phi)) in [1, 2].into_iter().zip(&self.kb) {
            e = e
                + (ta[c] * ta[c] * (4.0 + phi)
                    + ta[c] * tb[c] * (2.0 * (2.0 - phi))
                    + tb[c] * tb[c] * (4.0 + phi))
                    * (0.5 * k);
        }
        e
    }

    /// End forces `[F_a, M_a, F_b, M_b]` (global; moments about the end points) for end
    /// positions `x` and body rotations `rb`, the tangent `d f / d [dx_a, w_a, dx_b, w_b]`
    /// (row-major 12x12) when asked, the element frame and the current length.
    pub fn eval(
        &self,
        x: [V3; 2],
        rb: [M3; 2],
        tangent: bool,
    ) -> ([f64; 12], Option<Vec<f64>>, M3, f64) {
        let t = [rb[0] * self.r0, rb[1] * self.r0];
        let (f, k) = end_derivatives(x, t, tangent, |xa, xb, ta, tb| {
            let (u, _, a, b) = self.local(xa, xb, ta, tb);
            self.energy(u, &a, &b)
        });
        let (u, rr, _, _) = self.local(&hv(x[0]), &hv(x[1]), &hm(&t[0]), &hm(&t[1]));
        let rr = M3::from_fn(|i, j| rr[i][j].r);
        (f, k, rr, self.l0 + u.r)
    }
}

/// A constant vector as hyper-dual numbers.
pub(super) fn hv(v: V3) -> Hv {
    std::array::from_fn(|i| Hd::c(v[i]))
}

/// A constant matrix as hyper-dual numbers.
pub(super) fn hm(m: &M3) -> Hm {
    std::array::from_fn(|i| std::array::from_fn(|j| Hd::c(m[(i, j)])))
}

/// `energy` of two ends clamped to bodies, at end positions `x` and triads `t` perturbed by
/// `d1 e1 + d2 e2` (the end DOFs `[dx_a, w_a, dx_b, w_b]`; rotations as `(I + e1 skew(w1))
/// (I + e2 skew(w2)) T`, the exponentials truncated exactly since `e1^2 = e2^2 = 0`).
fn energy_at(
    x: [V3; 2],
    t: [M3; 2],
    d1: &[f64; 12],
    d2: &[f64; 12],
    energy: &impl Fn(&Hv, &Hv, &Hm, &Hm) -> Hd,
) -> Hd {
    let pos = |e: usize| -> Hv {
        std::array::from_fn(|i| Hd {
            r: x[e][i],
            a: d1[6 * e + i],
            b: d2[6 * e + i],
            ab: 0.0,
        })
    };
    let triad = |e: usize| -> Hm {
        let s1 = skew(&V3::new(d1[6 * e + 3], d1[6 * e + 4], d1[6 * e + 5]));
        let s2 = skew(&V3::new(d2[6 * e + 3], d2[6 * e + 4], d2[6 * e + 5]));
        let (a, b) = (s1 * t[e], s2 * t[e]);
        let ab = s1 * b;
        std::array::from_fn(|i| {
            std::array::from_fn(|j| Hd {
                r: t[e][(i, j)],
                a: a[(i, j)],
                b: b[(i, j)],
                ab: ab[(i, j)],
            })
        })
    };
    energy(&pos(0), &pos(1), &triad(0), &triad(1))
}

/// The end forces `[F_a, M_a, F_b, M_b]` (the gradient of `energy` with respect to the end
/// DOFs) of an element whose two ends are clamped to bodies, at end positions `x` and end
/// triads `t`, and the tangent `d f / d [dx_a, w_a, dx_b, w_b]` (row-major 12x12, in the
/// order the solver applies spatial rotation increments) when asked.
pub(super) fn end_derivatives(
    x: [V3; 2],
    t: [M3; 2],
    tangent: bool,
    energy: impl Fn(&Hv, &Hv, &Hm, &Hm) -> Hd,
) -> ([f64; 12], Option<Vec<f64>>) {
    let unit = |j: usize| -> [f64; 12] { std::array::from_fn(|i| (i == j) as u8 as f64) };
    let zero = [0.0; 12];
    let mut f = [0.0; 12];
    if tangent {
        let mut k = vec![0.0; 144];
        for j in 0..12 {
            for m in 0..12 {
                let e = energy_at(x, t, &unit(j), &unit(m), &energy);
                f[j] = e.a;
                k[12 * j + m] = e.ab;
            }
        }
        (f, Some(k))
    } else {
        for (j, fj) in f.iter_mut().enumerate() {
            *fj = energy_at(x, t, &unit(j), &zero, &energy).a;
        }
        (f, None)
    }
}

/// Checks a beam's data so that the element never divides by zero.
pub(crate) fn validate(beam: &Beam, num_bodies: usize) -> Result<(), FemError> {
    let bad = |m: &str| Err(FemError::InvalidInput(format!("beam '{}': {m}", beam.name)));
    let (a, b) = (beam.a, beam.b);
    if a.body >= num_bodies || b.body >= num_bodies {
        return bad("an end refers to a body that does not exist");
    }
    if a.body == b.body {
        return bad("both ends are on the same rigid body, so it can never deform: clamp the ends to two bodies");
    }
    let finite = |v: &[f64; 3]| v.iter().all(|c| c.is_finite());
    if !(finite(&a.at) && finite(&b.at) && finite(&beam.orientation)) {
        return bad("end points and orientation must be finite");
    }
    let d = V3::from(b.at) - V3::from(a.at);
    let o = V3::from(beam.orientation);
    if d.norm() < 1e-9 {
        return bad("the two end points coincide: a beam needs a length");
    }
    if d.cross(&o).norm() <= 1e-6 * d.norm() * o.norm() {
        return bad("the orientation vector is zero or parallel to the beam: give one across it (it fixes the section's y axis)");
    }
    let s = &beam.section;
    let pos = |v: f64| v > 0.0 && v.is_finite();
    if !(pos(s.area) && pos(s.iy) && pos(s.iz) && pos(s.j) && pos(s.outer_radius))
        || s.shear_area.is_some_and(|a| !pos(a))
    {
        return bad("the section needs positive, finite area, iy, iz, j, outer radius (and shear area if given)");
    }
    if !(pos(beam.e) && beam.nu > -1.0 && beam.nu < 0.5) {
        return bad("the material needs E > 0 and -1 < nu < 0.5");
    }
    Ok(())
}

/// Beams; returns each beam's result (zero when deactivated).
pub(crate) fn beams(
    model: &Model,
    map: &DofMap,
    st: &State,
    act: &Active,
    asm: &mut Asm,
) -> Vec<BeamState> {
    model
        .beams
        .iter()
        .enumerate()
        .map(|(i, beam)| {
            if !act.beam[i] {
                return BeamState::default();
            }
            let el = Elem::new(beam);
            let ends = [beam.a, beam.b];
            let pa = ends.map(|e| st.body_point(model, e.body, V3::from(e.at)));
            let (f, k, rr, l) =
                el.eval([pa[0].0, pa[1].0], ends.map(|e| st.r[e.body]), asm.tangent);
            asm.add_body_ends(
                map,
                [
                    (map.body[beam.a.body], pa[0].1),
                    (map.body[beam.b.body], pa[1].1),
                ],
                &f,
                k.as_deref(),
            );
            beam_state(beam, &f, &rr, l)
        })
        .collect()
}

/// End forces in the local frame and the peak von Mises stress.
fn beam_state(beam: &Beam, f: &[f64; 12], rr: &M3, l: f64) -> BeamState {
    let loc = |o: usize| -> [f64; 6] {
        let fl = rr.transpose() * V3::new(f[o], f[o + 1], f[o + 2]);
        let ml = rr.transpose() * V3::new(f[o + 3], f[o + 4], f[o + 5]);
        [fl.x, fl.y, fl.z, ml.x, ml.y, ml.z]
    };
    let (end_a, end_b) = (loc(0), loc(6));
    let s = &beam.section;
    let r = s.outer_radius;
    let vm = |e: &[f64; 6]| {
        let sigma = e[0].abs() / s.area + r * (e[4] / s.iy).hypot(e[5] / s.iz);
        let tau = e[3].abs() * r / s.j;
        (sigma * sigma + 3.0 * tau * tau).sqrt()
    };
    let global = |o: usize| -> [f64; 6] { std::array::from_fn(|i| f[o + i]) };
    BeamState {
        axial_force: end_b[0],
        max_von_mises: vm(&end_a).max(vm(&end_b)),
        end_a,
        end_b,
        end_a_global: global(0),
        end_b_global: global(6),
        length: l,
    }
}

impl Asm {
    /// Adds the end forces `f = [F_a, M_a, F_b, M_b]` of an element whose ends are clamped to
    /// bodies (slots, arm from the body's reference point to the end) and its tangent `k`
    /// with respect to the end DOFs. An end moves as `dx = dc - skew(r) dtheta`, `w =
    /// dtheta`, so the body sees `[F, r x F + M]` and `T^T k T`, plus the rotation of the arm
    /// under a fixed force, `d (r x F) / d theta = skew(F) skew(r)`.
    pub(crate) fn add_body_ends(
        &mut self,
        map: &DofMap,
        ends: [([Slot; 6], V3); 2],
        f: &[f64; 12],
        k: Option<&[f64]>,
    ) {
        let force = |e: usize| V3::new(f[6 * e], f[6 * e + 1], f[6 * e + 2]);
        for (e, (slots, r)) in ends.iter().enumerate() {
            let fe = force(e);
            let m = r.cross(&fe) + V3::new(f[6 * e + 3], f[6 * e + 4], f[6 * e + 5]);
            for (s, v) in slots.iter().zip(fe.iter().chain(m.iter())) {
                if let Some(i) = map.idx(*s) {
                    self.f_int[i] += v;
                }
            }
        }
        let Some(k) = k else { return };
        // T per end as 6x6: [[I, -skew(r)], [0, I]].
        let t = |r: &V3| -> [[f64; 6]; 6] {
            let s = -skew(r);
            std::array::from_fn(|i| {
                std::array::from_fn(|j| match (i < 3, j < 3) {
                    (true, true) | (false, false) => (i == j) as u8 as f64,
                    (true, false) => s[(i, j - 3)],
                    (false, true) => 0.0,
                })
            })
        };
        let ts = [t(&ends[0].1), t(&ends[1].1)];
        for (ea, (sa, _)) in ends.iter().enumerate() {
            for (eb, (sb, _)) in ends.iter().enumerate() {
                // T_a^T K_ab T_b.
                let kab = |i: usize, j: usize| k[12 * (6 * ea + i) + 6 * eb + j];
                let mut kt = [[0.0; 6]; 6];
                for (i, row) in kt.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..6).map(|m| kab(i, m) * ts[eb][m][j]).sum();
                    }
                }
                for i in 0..6 {
                    for j in 0..6 {
                        let v: f64 = (0..6).map(|m| ts[ea][m][i] * kt[m][j]).sum();
                        if v != 0.0 {
                            self.push(sa[i], sb[j], v);
                        }
                    }
                }
            }
        }
        for (e, (slots, r)) in ends.iter().enumerate() {
            let g = skew(&force(e)) * skew(r);
            self.add_block(&slots[3..6], &slots[3..6], &g);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::nl::kin::expm;
    use crate::nl::{BeamEnd, BeamSection};

    fn beam() -> Beam {
        Beam {
            name: "rod".into(),
            a: BeamEnd {
                body: 0,
                at: [1.0, 2.0, -1.0],
            },
            b: BeamEnd {
                body: 1,
                at: [31.0, 12.0, 4.0],
            },
            section: BeamSection::circle(5.5).with_shear_area(20.0),
            e: 110e3,
            nu: 0.3,
            orientation: [0.0, 0.3, 1.0],
        }
    }

    /// A deformed configuration: the ends moved and rotated independently.
    fn deformed() -> ([V3; 2], [M3; 2]) {
        let b = beam();
        (
            [
                V3::from(b.a.at) + V3::new(0.4, -0.3, 0.2),
                V3::from(b.b.at) + V3::new(-1.1, 2.5, -0.7),
            ],
            [
                expm(&V3::new(0.3, -0.2, 0.5)),
                expm(&V3::new(-0.1, 0.45, 0.35)),
            ],
        )
    }

    #[test]
    fn log_inverts_exp() {
        for w in [
            V3::new(0.3, -0.2, 0.5),
            V3::new(1e-9, 2e-9, -1e-9),
            V3::new(0.0, 2.5, 1.0),
        ] {
            let r = expm(&w);
            let m: Hm = std::array::from_fn(|i| std::array::from_fn(|j| Hd::c(r[(i, j)])));
            let l = log_rot(&m);
            let e = (V3::new(l[0].r, l[1].r, l[2].r) - w).norm();
            assert!(e < 1e-12 * w.norm().max(1.0), "{w} {e}");
        }
    }

    /// Largest difference between the tangent `k` (row-major 12x12 at end positions `x`
    /// and rotations `r`) and central differences of the end forces `force`, relative to
    /// the largest entry of `k`.
    pub(in crate::nl) fn tangent_error(
        k: &[f64],
        x: [V3; 2],
        r: [M3; 2],
        force: impl Fn([V3; 2], [M3; 2]) -> [f64; 12],
    ) -> f64 {
        let h = 1e-6;
        let mut worst = 0.0f64;
        let scale = k.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for m in 0..12 {
            let (e, c) = (m / 6, m % 6);
            let perturbed = |s: f64| {
                let (mut x, mut r) = (x, r);
                if c < 3 {
                    x[e][c] += s;
                } else {
                    let mut w = V3::zeros();
                    w[c - 3] = s;
                    r[e] = expm(&w) * r[e];
                }
                force(x, r)
            };
            let (fp, fm) = (perturbed(h), perturbed(-h));
            for j in 0..12 {
                let fd = (fp[j] - fm[j]) / (2.0 * h);
                worst = worst.max((fd - k[12 * j + m]).abs() / scale);
            }
        }
        worst
    }

    #[test]
    fn tangent_matches_central_differences_of_the_force() {
        let el = Elem::new(&beam());
        let (x, r) = deformed();
        let (_, k, _, _) = el.eval(x, r, true);
        let worst = tangent_error(&k.unwrap(), x, r, |x, r| el.eval(x, r, false).0);
        eprintln!("beam tangent vs central differences: relative error {worst:e}");
        assert!(worst < 1e-7, "relative tangent error {worst:e}");
    }

    #[test]
    fn force_matches_central_differences_of_the_energy() {
        let el = Elem::new(&beam());
        let (x, r) = deformed();
        let (f, _, _, _) = el.eval(x, r, false);
        let t = |r: &[M3; 2]| [r[0] * el.r0, r[1] * el.r0];
        let z = [0.0; 12];
        let h = 1e-6;
        let scale = f.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (m, fm) in f.iter().enumerate() {
            let (e, c) = (m / 6, m % 6);
            let en = |s: f64| {
                let (mut x, mut r) = (x, r);
                if c < 3 {
                    x[e][c] += s;
                } else {
                    let mut w = V3::zeros();
                    w[c - 3] = s;
                    r[e] = expm(&w) * r[e];
                }
                energy_at(x, t(&r), &z, &z, &|xa: &Hv, xb: &Hv, ta: &Hm, tb: &Hm| {
                    let (u, _, a, b) = el.local(xa, xb, ta, tb);
                    el.energy(u, &a, &b)
                })
                .r
            };
            let fd = (en(h) - en(-h)) / (2.0 * h);
            assert!((fd - fm).abs() < 1e-6 * scale, "{m}: {fd} vs {fm}");
        }
    }

    #[test]
    fn rigid_motion_gives_no_force() {
        let b = beam();
        let el = Elem::new(&b);
        let q = expm(&V3::new(1.1, -0.7, 2.0));
        let shift = V3::new(5.0, -3.0, 8.0);
        let x = [b.a.at, b.b.at].map(|p| q * V3::from(p) + shift);
        let (f, k, _, l) = el.eval(x, [q, q], true);
        let fmax = f.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        eprintln!("rigid motion: largest end force or moment {fmax:e}");
        assert!(fmax < 1e-9, "{f:?}");
        assert!((l - el.l0).abs() < 1e-12);
        // The tangent still has the stiffness of the undeformed beam.
        assert!(k.unwrap().iter().any(|v| v.abs() > 1e3));
    }
}
