//! DOF map, state and point kinematics of the nonlinear solver.

use nalgebra::{Matrix3, Vector3};

use super::{Dof, Model, Point};
use crate::FemError;

pub(crate) type V3 = Vector3<f64>;
pub(crate) type M3 = Matrix3<f64>;

/// Where a DOF lives: an equation, a prescribed value, or nowhere (unused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Unknown `i`.
    Eq(usize),
    /// Prescribed DOF `j` (index into [`DofMap::fixed`]).
    Fix(usize),
    /// Not part of the analysis.
    Off,
}

/// DOF numbering of one step.
#[derive(Clone, Debug)]
pub(crate) struct DofMap {
    /// Slots of each mesh node (Off for tied or unused nodes).
    pub node: Vec<[Slot; 3]>,
    /// Slots of each body.
    pub body: Vec<[Slot; 6]>,
    /// Body a node is tied to.
    pub tied: Vec<Option<usize>>,
    /// Number of unknowns.
    pub neq: usize,
    /// The prescribed DOFs.
    pub fixed: Vec<Dof>,
}

impl DofMap {
    /// Vector index of a slot in the all-slots vectors (equations first, then prescribed).
    pub fn idx(&self, s: Slot) -> Option<usize> {
        match s {
            Slot::Eq(i) => Some(i),
            Slot::Fix(j) => Some(self.neq + j),
            Slot::Off => None,
        }
    }

    /// Length of the all-slots vectors.
    pub fn nslots(&self) -> usize {
        self.neq + self.fixed.len()
    }

    /// Numbers the DOFs: `used[n]` says whether node `n` takes part; `fixed` is the sorted
    /// list of prescribed DOFs.
    pub fn build(
        model: &Model,
        tied: Vec<Option<usize>>,
        used: &[bool],
        fixed: &[Dof],
    ) -> Result<DofMap, FemError> {
        let nn = model.mesh.num_nodes();
        let mut node = vec![[Slot::Off; 3]; nn];
        let mut body = vec![[Slot::Off; 6]; model.bodies.len()];
        for (j, d) in fixed.iter().enumerate() {
            match *d {
                Dof::Node { node: n, dir } => {
                    if tied[n].is_some() {
                        return Err(FemError::InvalidInput(format!(
                            "node {n} is tied to body {} and cannot be prescribed: prescribe the body's DOFs",
                            tied[n].unwrap_or(0)
                        )));
                    }
                    node[n][dir] = Slot::Fix(j);
                }
                Dof::Body { body: b, k } => body[b][k] = Slot::Fix(j),
            }
        }
        let mut neq = 0;
        for n in 0..nn {
            if !used[n] || tied[n].is_some() {
                for s in node[n].iter_mut() {
                    if matches!(s, Slot::Eq(_)) {
                        *s = Slot::Off;
                    }
                }
                continue;
            }
            for s in node[n].iter_mut() {
                if *s == Slot::Off {
                    *s = Slot::Eq(neq);
                    neq += 1;
                }
            }
        }
        for b in body.iter_mut() {
            for s in b.iter_mut() {
                if *s == Slot::Off {
                    *s = Slot::Eq(neq);
                    neq += 1;
                }
            }
        }
        Ok(DofMap {
            node,
            body,
            tied,
            neq,
            fixed: fixed.to_vec(),
        })
    }
}

/// The configuration: node displacements and body poses.
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// Displacement of every free mesh node (tied nodes: see [`State::point`]).
    pub u: Vec<V3>,
    /// Translation of each body's reference point.
    pub c: Vec<V3>,
    /// Rotation of each body.
    pub r: Vec<M3>,
    /// Sum of the spatial rotation increments of each body (used for prescribed rotations).
    pub theta: Vec<V3>,
    /// Per contact pair and slave point, its friction anchor as of the last converged
    /// increment (history: Newton iterations do not change it).
    pub anchors: Vec<Vec<super::contact::Anchor>>,
    /// Per contact pair and slave point, its augmented-Lagrangian multiplier (N; all zero
    /// for pure-penalty pairs). History like the anchors: updated between Newton solves.
    pub multipliers: Vec<Vec<f64>>,
}

/// A point's current position and how it moves with the DOFs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kin {
    /// A free node: `dx = du`.
    Node([Slot; 3]),
    /// On a body: `dx = dc - skew(r) dtheta` with `r = x - c`.
    Body { slots: [Slot; 6], r: V3 },
}

/// Point with position and kinematics.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pk {
    pub x: V3,
    pub kin: Kin,
}

impl State {
    /// The reference state.
    pub fn new(model: &Model) -> State {
        State {
            u: vec![V3::zeros(); model.mesh.num_nodes()],
            c: vec![V3::zeros(); model.bodies.len()],
            r: vec![M3::identity(); model.bodies.len()],
            theta: vec![V3::zeros(); model.bodies.len()],
            anchors: model
                .contacts
                .iter()
                .map(|c| vec![None; c.slave.len()])
                .collect(),
            multipliers: model
                .contacts
                .iter()
                .map(|c| vec![0.0; c.slave.len()])
                .collect(),
        }
    }

    /// Current position of a reference point `at` on body `b`, and its arm from the
    /// body's current reference point.
    pub fn body_point(&self, model: &Model, b: usize, at: V3) -> (V3, V3) {
        let xref = V3::from(model.bodies[b].reference);
        let arm = self.r[b] * (at - xref);
        (xref + self.c[b] + arm, arm)
    }

    /// Kinematics of a mesh node.
    pub fn node(&self, model: &Model, map: &DofMap, n: usize) -> Pk {
        let x0 = V3::from(model.mesh.nodes[n]);
        match map.tied[n] {
            Some(b) => {
                let (x, r) = self.body_point(model, b, x0);
                Pk {
                    x,
                    kin: Kin::Body {
                        slots: map.body[b],
                        r,
                    },
                }
            }
            None => Pk {
                x: x0 + self.u[n],
                kin: Kin::Node(map.node[n]),
            },
        }
    }

    /// Kinematics of a model point.
    pub fn point(&self, model: &Model, map: &DofMap, p: &Point) -> Pk {
        match *p {
            Point::Node(n) => self.node(model, map, n),
            Point::Body { body, at } => {
                let (x, r) = self.body_point(model, body, V3::from(at));
                Pk {
                    x,
                    kin: Kin::Body {
                        slots: map.body[body],
                        r,
                    },
                }
            }
        }
    }

    /// Displacement of mesh node `n` (tied nodes follow their body).
    pub fn node_displacement(&self, model: &Model, tied: &[Option<usize>], n: usize) -> V3 {
        let x0 = V3::from(model.mesh.nodes[n]);
        match tied[n] {
            Some(b) => self.body_point(model, b, x0).0 - x0,
            None => self.u[n],
        }
    }

    /// Adds `alpha * du` (equation values) to the state; rotations are updated
    /// multiplicatively `R <- exp(dtheta) R`.
    pub fn update(&mut self, map: &DofMap, du: &[f64], alpha: f64) {
        for (n, s) in map.node.iter().enumerate() {
            for (d, slot) in s.iter().enumerate() {
                if let Slot::Eq(i) = *slot {
                    self.u[n][d] += alpha * du[i];
                }
            }
        }
        for (b, s) in map.body.iter().enumerate() {
            let mut dth = V3::zeros();
            let mut dc = V3::zeros();
            for k in 0..6 {
                if let Slot::Eq(i) = s[k] {
                    if k < 3 {
                        dc[k] = alpha * du[i];
                    } else {
                        dth[k - 3] = alpha * du[i];
                    }
                }
            }
            // The increment (dc, dth) is applied as a screw motion (the SE(3) exponential
            // of the twist, Murray, Li & Sastry 1994, A Mathematical Introduction to
            // Robotic Manipulation, sec. 2.3), not as a straight translation plus a rotation
            // about the body's own reference point. Both agree to first order, so Newton's
            // tangent is unchanged; but when a chain of bodies turns about a distant point
            // the screw moves every body along its true arc, whereas the straight update
            // pushes bodies off the arc by |r| theta^2 / 2 and squeezes whatever stiff
            // element joins them (e.g. nearly incompressible discs), which crippled Newton
            // on spines of several vertebrae.
            self.c[b] += screw_translation(&dth) * dc;
            self.rotate(b, dth);
        }
    }

    /// [`State::update`] with the free nodes moved along the arc of their local rotation:
    /// node `n` moves by `V(alpha w_n) alpha du_n` (`V` of [`screw_translation`]) instead
    /// of `alpha du_n`. A body's screw update moves each of its points by exactly `V(theta)`
    /// times the point's linearised displacement, so with `w_n` the rotation increment of the
    /// bodies around node `n` (interpolated by the solver) the nodes next to a rotating body
    /// stay on its arc instead of being pushed off it by about `|du| |theta| / 2` (which,
    /// with a nearly incompressible disc between rotating vertebrae, raised the residual of
    /// every first Newton iteration a hundredfold on the spine twin). The
    /// difference from the straight update is `O(|du|^2)`: Newton's quadratic convergence
    /// and the converged solution are unchanged.
    pub fn update_rotating(&mut self, map: &DofMap, du: &[f64], alpha: f64, w: &[V3]) {
        let old: Vec<(usize, V3)> = w
            .iter()
            .enumerate()
            .filter(|(_, wn)| **wn != V3::zeros())
            .map(|(n, _)| (n, self.u[n]))
            .collect();
        self.update(map, du, alpha);
        for (n, u0) in old {
            let d = self.u[n] - u0;
            self.u[n] = u0 + screw_translation(&(w[n] * alpha)) * d;
        }
    }

    /// Applies a spatial rotation increment to body `b`.
    pub fn rotate(&mut self, b: usize, dth: V3) {
        if dth != V3::zeros() {
            self.r[b] = expm(&dth) * self.r[b];
            self.theta[b] += dth;
        }
    }

    /// Current value of a prescribed DOF.
    pub fn dof_value(&self, d: Dof) -> f64 {
        match d {
            Dof::Node { node, dir } => self.u[node][dir],
            Dof::Body { body, k } if k < 3 => self.c[body][k],
            Dof::Body { body, k } => self.theta[body][k - 3],
        }
    }
}

/// `V(theta) = I + (1 - cos t)/t^2 K + (t - sin t)/t^3 K^2` (`K = skew(theta)`, `t = |theta|`):
/// the translation of the SE(3) exponential is `V v` for a twist `(v, theta)`.
pub(crate) fn screw_translation(t: &V3) -> M3 {
    let th = t.norm();
    let k = skew(t);
    let (a, b) = if th < 1e-4 {
        (0.5 - th * th / 24.0, 1.0 / 6.0 - th * th / 120.0)
    } else {
        (
            (1.0 - th.cos()) / (th * th),
            (th - th.sin()) / (th * th * th),
        )
    };
    M3::identity() + k * a + k * k * b
}

/// Cross-product matrix: `skew(a) b = a x b`.
pub(crate) fn skew(a: &V3) -> M3 {
    M3::new(0.0, -a.z, a.y, a.z, 0.0, -a.x, -a.y, a.x, 0.0)
}

/// Rotation matrix of a rotation vector (Rodrigues' formula).
pub(crate) fn expm(t: &V3) -> M3 {
    let th = t.norm();
    let k = skew(t);
    let (a, b) = if th < 1e-8 {
        (1.0 - th * th / 6.0, 0.5 - th * th / 24.0)
    } else {
        (th.sin() / th, (1.0 - th.cos()) / (th * th))
    };
    M3::identity() + k * a + k * k * b
}
