//! Linear elastic connector (bushing) between two rigid bodies.
//!
//! The relative displacement and rotation of point `b` with respect to point `a` are
//! measured in a frame that turns with body `a` (`u = T_a^T (x_b - x_a) - u_0`, `theta =
//! log(T_a^T T_b)`), so the element is objective like the corotational beam; its energy
//! `q^T K q / 2` is differentiated by the same hyper-dual machinery (`beam.rs`), which
//! gives the force and the consistent tangent exactly.

use nalgebra::SymmetricEigen;

use super::assemble::Asm;
use super::beam::{dot, end_derivatives, hm, hv, log_rot, sub, Hd, Hm, Hv};
use super::kin::{DofMap, State, M3, V3};
use super::{Connector, ConnectorState, Model};
use crate::FemError;

/// The element's constant data.
pub(crate) struct Elem {
    /// Local axes as columns.
    r0: M3,
    /// `R_0^T (b.at - a.at)`: the relative position at rest, local.
    u0: V3,
    k: [[f64; 6]; 6],
}

impl Elem {
    /// Constant data; the connector is validated beforehand.
    pub fn new(c: &Connector) -> Elem {
        let r0 = M3::from_columns(&c.axes.map(V3::from));
        Elem {
            r0,
            u0: r0.transpose() * (V3::from(c.b.at) - V3::from(c.a.at)),
            k: c.stiffness,
        }
    }

    /// `[u, theta]` for end points `x` and triads `t`.
    fn relative(&self, xa: &Hv, xb: &Hv, ta: &Hm, tb: &Hm) -> [Hd; 6] {
        let d = sub(xb, xa);
        let col = |m: &Hm, i: usize| -> Hv { [m[0][i], m[1][i], m[2][i]] };
        let rel: Hm =
            std::array::from_fn(|i| std::array::from_fn(|j| dot(&col(ta, i), &col(tb, j))));
        let th = log_rot(&rel);
        std::array::from_fn(|i| {
            if i < 3 {
                dot(&col(ta, i), &d) - Hd::c(self.u0[i])
            } else {
                th[i - 3]
            }
        })
    }

    fn energy(&self, q: &[Hd; 6]) -> Hd {
        let mut e = Hd::c(0.0);
        for i in 0..6 {
            for j in 0..6 {
                if self.k[i][j] != 0.0 {
                    e = e + q[i] * q[j] * (0.5 * self.k[i][j]);
                }
            }
        }
        e
    }

    /// End forces `[F_a, M_a, F_b, M_b]` (global; moments about the end points), the
    /// tangent (row-major 12x12) when asked, and `[u, theta]`.
    pub fn eval(
        &self,
        x: [V3; 2],
        rb: [M3; 2],
        tangent: bool,
    ) -> ([f64; 12], Option<Vec<f64>>, [f64; 6]) {
        let t = [rb[0] * self.r0, rb[1] * self.r0];
        let (f, k) = end_derivatives(x, t, tangent, |xa, xb, ta, tb| {
            self.energy(&self.relative(xa, xb, ta, tb))
        });
        let q = self.relative(&hv(x[0]), &hv(x[1]), &hm(&t[0]), &hm(&t[1]));
        (f, k, q.map(|v| v.r))
    }
}

/// Checks a connector's data.
pub(crate) fn validate(c: &Connector, num_bodies: usize) -> Result<(), FemError> {
    let bad = |m: &str| {
        Err(FemError::InvalidInput(format!(
            "connector '{}': {m}",
            c.name
        )))
    };
    if c.a.body >= num_bodies || c.b.body >= num_bodies {
        return bad("an end refers to a body that does not exist");
    }
    if c.a.body == c.b.body {
        return bad(
            "both ends are on the same rigid body, so it can never deform: join two bodies",
        );
    }
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    if !(finite(&c.a.at) && finite(&c.b.at) && c.axes.iter().all(|a| finite(a))) {
        return bad("end points and axes must be finite");
    }
    let r = M3::from_columns(&c.axes.map(V3::from));
    if (r.transpose() * r - M3::identity()).norm() > 1e-6 || r.determinant() < 0.0 {
        return bad("the axes must be orthonormal unit vectors forming a right-handed frame");
    }
    let k = nalgebra::Matrix6::from_fn(|i, j| c.stiffness[i][j]);
    let scale = k.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if !finite(k.as_slice()) || scale == 0.0 {
        return bad("the stiffness matrix must be finite and not zero");
    }
    if (k - k.transpose()).amax() > 1e-9 * scale {
        return bad("the stiffness matrix must be symmetric");
    }
    let low = SymmetricEigen::new(k).eigenvalues.min();
    if low < -1e-9 * scale {
        return bad(&format!(
            "the stiffness matrix must be positive semi-definite (an eigenvalue is {low:.3e}), or the connector would feed energy into the model"
        ));
    }
    Ok(())
}

/// Connectors: adds their forces and tangents, returns each one's state.
pub(crate) fn connectors(
    model: &Model,
    map: &DofMap,
    st: &State,
    asm: &mut Asm,
) -> Vec<ConnectorState> {
    model
        .connectors
        .iter()
        .map(|c| {
            let el = Elem::new(c);
            let ends = [c.a, c.b];
            let p = ends.map(|e| st.body_point(model, e.body, V3::from(e.at)));
            let (f, k, q) = el.eval([p[0].0, p[1].0], ends.map(|e| st.r[e.body]), asm.tangent);
            asm.add_body_ends(
                map,
                [(map.body[c.a.body], p[0].1), (map.body[c.b.body], p[1].1)],
                &f,
                k.as_deref(),
            );
            let mut force = [0.0; 6];
            for (i, fi) in force.iter_mut().enumerate() {
                *fi = (0..6).map(|j| el.k[i][j] * q[j]).sum();
            }
            ConnectorState {
                relative: q,
                force,
                end_b_global: std::array::from_fn(|i| f[6 + i]),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nl::kin::expm;
    use crate::nl::BeamEnd;

    fn connector() -> Connector {
        let x = V3::new(1.0, 2.0, 2.0).normalize();
        let y = V3::new(2.0, -1.0, 0.0).normalize();
        let z = x.cross(&y);
        let mut k = [[0.0; 6]; 6];
        // Coupled translation and rotation (a shaft in a foundation) and a small
        // off-diagonal term everywhere: symmetric, positive definite.
        let d = [800.0, 900.0, 300.0, 2.0e5, 2.5e5, 4.0e4];
        for i in 0..6 {
            k[i][i] = d[i];
        }
        k[0][4] = 6.0e3;
        k[4][0] = 6.0e3;
        k[1][3] = -7.0e3;
        k[3][1] = -7.0e3;
        k[2][5] = 50.0;
        k[5][2] = 50.0;
        Connector {
            name: "bushing".into(),
            a: BeamEnd {
                body: 0,
                at: [3.0, -1.0, 2.0],
            },
            b: BeamEnd {
                body: 1,
                at: [3.5, -1.0, 2.2],
            },
            axes: [x.into(), y.into(), z.into()],
            stiffness: k,
        }
    }

    fn deformed() -> ([V3; 2], [M3; 2]) {
        let c = connector();
        let q = expm(&V3::new(0.4, -0.3, 0.9));
        (
            [
                q * V3::from(c.a.at) + V3::new(1.0, 2.0, -3.0),
                q * V3::from(c.b.at) + V3::new(1.3, 1.8, -2.9),
            ],
            [q, expm(&V3::new(0.02, -0.05, 0.03)) * q],
        )
    }

    #[test]
    fn validation_refuses_bad_data() {
        assert!(validate(&connector(), 2).is_ok());
        let mut c = connector();
        c.stiffness[0][1] = 5.0;
        assert!(validate(&c, 2)
            .unwrap_err()
            .to_string()
            .contains("symmetric"));
        let mut c = connector();
        c.stiffness[2][2] = -1.0;
        assert!(validate(&c, 2)
            .unwrap_err()
            .to_string()
            .contains("semi-definite"));
        let mut c = connector();
        c.axes[2] = [-c.axes[2][0], -c.axes[2][1], -c.axes[2][2]];
        assert!(validate(&c, 2)
            .unwrap_err()
            .to_string()
            .contains("right-handed"));
        let mut c = connector();
        c.b.body = 0;
        assert!(validate(&c, 2).is_err());
        assert!(validate(&connector(), 1).is_err());
    }

    #[test]
    fn rigid_motion_stores_nothing() {
        let c = connector();
        let el = Elem::new(&c);
        let q = expm(&V3::new(1.1, -0.7, 2.0));
        let shift = V3::new(5.0, -3.0, 8.0);
        let x = [c.a.at, c.b.at].map(|p| q * V3::from(p) + shift);
        let (f, _, rel) = el.eval(x, [q, q], false);
        let fmax = f.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(fmax < 1e-9, "{f:?}");
        assert!(rel.iter().all(|v| v.abs() < 1e-12), "{rel:?}");
    }

    #[test]
    fn small_motion_gives_k_times_the_local_motion() {
        // Body a at rest, body b moved by a small local translation and rotation about
        // point b: the force on b is K q in local axes.
        let c = connector();
        let el = Elem::new(&c);
        let r0 = M3::from_columns(&c.axes.map(V3::from));
        let q = [2e-6, -1e-6, 3e-6, 1e-7, -2e-7, 4e-7];
        let w = r0 * V3::new(q[3], q[4], q[5]);
        let x = [
            V3::from(c.a.at),
            V3::from(c.b.at) + r0 * V3::new(q[0], q[1], q[2]),
        ];
        let (f, _, rel) = el.eval(x, [M3::identity(), expm(&w)], false);
        for i in 0..6 {
            assert!((rel[i] - q[i]).abs() < 1e-12, "{rel:?}");
        }
        let fb = r0.transpose() * V3::new(f[6], f[7], f[8]);
        let mb = r0.transpose() * V3::new(f[9], f[10], f[11]);
        for i in 0..6 {
            let kq: f64 = (0..6).map(|j| c.stiffness[i][j] * q[j]).sum();
            let got = if i < 3 { fb[i] } else { mb[i - 3] };
            assert!(
                (got - kq).abs() < 1e-6 * kq.abs().max(1e-3),
                "{i}: {got} vs {kq}"
            );
        }
        // Equilibrium of the connector: the two ends' forces balance.
        for i in 0..3 {
            assert!((f[i] + f[6 + i]).abs() < 1e-9);
        }
    }

    #[test]
    fn tangent_matches_central_differences_of_the_force() {
        let el = Elem::new(&connector());
        let (x, r) = deformed();
        let (_, k, _) = el.eval(x, r, true);
        let worst =
            crate::nl::beam::tests::tangent_error(&k.unwrap(), x, r, |x, r| el.eval(x, r, false).0);
        eprintln!("connector tangent vs central differences: relative error {worst:e}");
        assert!(worst < 1e-7, "relative tangent error {worst:e}");
    }
}
