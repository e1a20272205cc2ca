//! Residual and tangent assembly: generalised forces of points mapped through the point
//! kinematics (free node or point on a rigid body), solids, springs and loads (beams:
//! `beam.rs`).

use rayon::prelude::*;

use super::kin::{skew, DofMap, Kin, Pk, Slot, State, M3, V3};
use super::{Load, Model, SpringLaw};
use crate::continuum::tl_element;
use crate::FemError;

/// Internal and external generalised forces over all slots and the tangent triplets
/// (`d(F_int - F_ext)/d q` over the equations).
#[derive(Default)]
pub(crate) struct Asm {
    pub f_int: Vec<f64>,
    pub f_ext: Vec<f64>,
    pub idx: Vec<(u32, u32)>,
    pub val: Vec<f64>,
    /// Coupling of the equations with the prescribed DOFs: (equation, prescribed index).
    pub idx_fix: Vec<(u32, u32)>,
    /// Its values.
    pub val_fix: Vec<f64>,
    pub tangent: bool,
    /// When set, [`Asm::add_internal`] books its forces as external loads (negated): used
    /// for deformation-dependent loads written in internal-force form.
    pub ext_mode: bool,
}

/// Rows of `T^T` (generalised DOF -> 3 position components) for a point: for a body point
/// `dx = dc - skew(r) dtheta`, so `T = [I, -skew(r)]`.
fn t_rows(kin: &Kin) -> ([Slot; 6], [M3; 2], usize) {
    match *kin {
        Kin::Node(s) => (
            [s[0], s[1], s[2], Slot::Off, Slot::Off, Slot::Off],
            [M3::identity(), M3::zeros()],
            3,
        ),
        Kin::Body { slots, r } => (slots, [M3::identity(), -skew(&r)], 6),
    }
}

impl Asm {
    pub fn new(n: usize, tangent: bool) -> Asm {
        Asm {
            f_int: vec![0.0; n],
            f_ext: vec![0.0; n],
            tangent,
            ..Default::default()
        }
    }

    pub(crate) fn push(&mut self, r: Slot, c: Slot, v: f64) {
        match (r, c) {
            (Slot::Eq(i), Slot::Eq(j)) => {
                self.idx.push((i as u32, j as u32));
                self.val.push(v);
            }
            (Slot::Eq(i), Slot::Fix(j)) => {
                self.idx_fix.push((i as u32, j as u32));
                self.val_fix.push(v);
            }
            _ => {}
        }
    }

    fn add_vec(target: &mut [f64], map: &DofMap, p: &Pk, f: &V3) {
        let (slots, _, nd) = t_rows(&p.kin);
        let g = generalised(&p.kin, f);
        for k in 0..nd {
            if let Some(i) = map.idx(slots[k]) {
                target[i] += g[k];
            }
        }
    }

    /// Adds internal forces `f[p]` at points `pts` and (when assembling the tangent)
    /// `k = d f / d x` (row-major `3n x 3n`), including the rotational geometric term of
    /// body points (`d (r x f) / d theta = skew(f) skew(r)` for a fixed `f`).
    pub fn add_internal(&mut self, map: &DofMap, pts: &[Pk], f: &[V3], k: Option<&[f64]>) {
        for (p, fp) in pts.iter().zip(f) {
            if self.ext_mode {
                Self::add_vec(&mut self.f_ext, map, p, &-fp);
            } else {
                Self::add_vec(&mut self.f_int, map, p, fp);
            }
        }
        if !self.tangent {
            return;
        }
        let n = pts.len();
        let ts: Vec<_> = pts.iter().map(|p| t_rows(&p.kin)).collect();
        if let Some(k) = k {
            for (a, (sa, ta, na)) in ts.iter().enumerate() {
                for (b, (sb, tb, nb)) in ts.iter().enumerate() {
                    let kab = M3::from_fn(|i, j| k[(3 * a + i) * 3 * n + 3 * b + j]);
                    if kab == M3::zeros() {
                        continue;
                    }
                    // G = T_a^T K_ab T_b, in 3x3 blocks.
                    for ba in 0..na / 3 {
                        for bb in 0..nb / 3 {
                            let g = ta[ba].transpose() * kab * tb[bb];
                            for i in 0..3 {
                                for j in 0..3 {
                                    self.push(sa[3 * ba + i], sb[3 * bb + j], g[(i, j)]);
                                }
                            }
                        }
                    }
                }
            }
        }
        for (p, fp) in pts.iter().zip(f) {
            if let Kin::Body { slots, r } = p.kin {
                let g = skew(fp) * skew(&r);
                self.add_block(&slots[3..6], &slots[3..6], &g);
            }
        }
    }

    pub(crate) fn add_block(&mut self, rows: &[Slot], cols: &[Slot], g: &M3) {
        for i in 0..3 {
            for j in 0..3 {
                self.push(rows[i], cols[j], g[(i, j)]);
            }
        }
    }

    /// Adds a fixed-direction external force at a point (with the load stiffness of its
    /// moment when the point is on a body).
    pub fn add_external(&mut self, map: &DofMap, p: &Pk, f: &V3) {
        Self::add_vec(&mut self.f_ext, map, p, f);
        if self.tangent {
            if let Kin::Body { slots, r } = p.kin {
                let g = -(skew(f) * skew(&r));
                self.add_block(&slots[3..6], &slots[3..6], &g);
            }
        }
    }

    /// Adds an external generalised force component.
    pub fn add_external_slot(&mut self, map: &DofMap, s: Slot, v: f64) {
        if let Some(i) = map.idx(s) {
            self.f_ext[i] += v;
        }
    }

    /// Merges another assembly into this one.
    pub fn merge(mut self, o: Asm) -> Asm {
        for (a, b) in self.f_int.iter_mut().zip(&o.f_int) {
            *a += b;
        }
        for (a, b) in self.f_ext.iter_mut().zip(&o.f_ext) {
            *a += b;
        }
        self.idx.extend(o.idx);
        self.idx_fix.extend(o.idx_fix);
        self.val_fix.extend(o.val_fix);
        self.val.extend(o.val);
        self
    }
}

/// Generalised force of a point force: `[f]` or `[f, r x f]`.
fn generalised(kin: &Kin, f: &V3) -> [f64; 6] {
    match kin {
        Kin::Node(_) => [f.x, f.y, f.z, 0.0, 0.0, 0.0],
        Kin::Body { r, .. } => {
            let m = r.cross(f);
            [f.x, f.y, f.z, m.x, m.y, m.z]
        }
    }
}

/// The active parts of the model in a step.
pub(crate) struct Active {
    pub element: Vec<bool>,
    pub spring: Vec<bool>,
    pub beam: Vec<bool>,
    pub contact: Vec<bool>,
    /// Block material index of each element (None: in no block).
    pub block_of: Vec<Option<usize>>,
}

/// Solid elements (in parallel).
pub(crate) fn solids(
    model: &Model,
    map: &DofMap,
    st: &State,
    act: &Active,
    tangent: bool,
) -> Result<Asm, FemError> {
    let ns = map.nslots();
    let elems: Vec<usize> = (0..model.mesh.num_elements())
        .filter(|&e| act.element[e] && act.block_of[e].is_some())
        .collect();
    elems
        .par_iter()
        .try_fold(
            || Asm::new(ns, tangent),
            |mut asm, &e| {
                let blk = &model.solids[act.block_of[e].unwrap_or(0)];
                let nodes = model.mesh.element_nodes(e);
                let kind = model.mesh.kinds[e];
                let x0: Vec<[f64; 3]> = nodes.iter().map(|&n| model.mesh.nodes[n]).collect();
                let pts: Vec<Pk> = nodes.iter().map(|&n| st.node(model, map, n)).collect();
                let u: Vec<[f64; 3]> = pts
                    .iter()
                    .zip(&x0)
                    .map(|(p, x)| [p.x.x - x[0], p.x.y - x[1], p.x.z - x[2]])
                    .collect();
                let r = tl_element(kind, &x0, &u, blk.material.as_ref(), e)?;
                let f: Vec<V3> = r
                    .force
                    .chunks(3)
                    .map(|c| V3::new(c[0], c[1], c[2]))
                    .collect();
                asm.add_internal(map, &pts, &f, tangent.then_some(&r.tangent[..]));
                Ok(asm)
            },
        )
        .try_reduce(|| Asm::new(ns, tangent), |a, b| Ok(a.merge(b)))
}

/// Force (N) and its derivative with respect to strain of a tension-only law. The slope at
/// exactly zero strain is the tension-side one, so a spring at its rest length is stiff.
pub(crate) fn law_force(law: &SpringLaw, eps: f64) -> (f64, f64) {
    if eps < 0.0 {
        return (0.0, 0.0);
    }
    match law {
        SpringLaw::Linear { k } => (k * eps, *k),
        SpringLaw::Bilinear { k1, eps_t, k2 } => {
            if eps <= *eps_t {
                (k1 * eps, *k1)
            } else {
                (k1 * eps_t + k2 * (eps - eps_t), *k2)
            }
        }
        SpringLaw::ToeLinear { k, eps_t } => {
            if eps <= *eps_t {
                (k * eps * eps / (2.0 * eps_t), k * eps / eps_t)
            } else {
                (k * (eps - 0.5 * eps_t), *k)
            }
        }
        SpringLaw::Piecewise(pts) => {
            let (mut e0, mut f0) = (0.0, 0.0);
            let mut slope = 0.0;
            for &(e1, f1) in pts {
                slope = (f1 - f0) / (e1 - e0);
                if eps <= e1 {
                    return (f0 + slope * (eps - e0), slope);
                }
                (e0, f0) = (e1, f1);
            }
            (f0 + slope * (eps - e0), slope)
        }
    }
}

/// Checks a spring law's parameters.
pub(crate) fn check_law(name: &str, law: &SpringLaw) -> Result<(), FemError> {
    let bad = |m: &str| Err(FemError::InvalidInput(format!("spring '{name}': {m}")));
    let ok = |v: f64| v.is_finite() && v >= 0.0;
    match law {
        SpringLaw::Linear { k } if !ok(*k) => bad("stiffness k must be finite and >= 0"),
        SpringLaw::Bilinear { k1, eps_t, k2 } if !(ok(*k1) && ok(*k2) && *eps_t > 0.0) => {
            bad("bilinear law needs k1, k2 >= 0 and eps_t > 0")
        }
        SpringLaw::ToeLinear { k, eps_t } if !(ok(*k) && *eps_t > 0.0) => {
            bad("toe-linear law needs k >= 0 and eps_t > 0")
        }
        SpringLaw::Piecewise(p) => {
            if p.is_empty() {
                return bad("piecewise law needs at least one (strain, force) point");
            }
            let mut e0 = 0.0;
            for &(e, f) in p {
                if !(e > e0 && f.is_finite()) {
                    return bad("piecewise strains must increase from 0 and forces be finite");
                }
                e0 = e;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A two-point element of tension `t` (N) and `dt/dl`: internal forces `+-t n`, tangent
/// `dt/dl n n^T + t/l (I - n n^T)`.
pub(crate) fn two_point(asm: &mut Asm, map: &DofMap, a: Pk, b: Pk, t: f64, dtdl: f64) {
    let d = b.x - a.x;
    let l = d.norm();
    if l < 1e-12 {
        return;
    }
    let n = d / l;
    let kb = n * n.transpose() * dtdl + (M3::identity() - n * n.transpose()) * (t / l);
    let mut k = vec![0.0; 36];
    for i in 0..3 {
        for j in 0..3 {
            let v = kb[(i, j)];
            k[i * 6 + j] = v;
            k[(i + 3) * 6 + j + 3] = v;
            k[i * 6 + j + 3] = -v;
            k[(i + 3) * 6 + j] = -v;
        }
    }
    asm.add_internal(map, &[a, b], &[-n * t, n * t], Some(&k));
}

/// Springs; returns each spring's force and length.
pub(crate) fn springs(
    model: &Model,
    map: &DofMap,
    st: &State,
    act: &Active,
    asm: &mut Asm,
) -> (Vec<f64>, Vec<f64>) {
    let mut forces = vec![0.0; model.springs.len()];
    let mut lengths = vec![0.0; model.springs.len()];
    for (i, s) in model.springs.iter().enumerate() {
        let a = st.point(model, map, &s.a);
        let b = st.point(model, map, &s.b);
        let l = (b.x - a.x).norm();
        lengths[i] = l;
        if !act.spring[i] {
            continue;
        }
        let (f, dfde) = law_force(&s.law, (l - s.rest_length) / s.rest_length);
        forces[i] = f;
        two_point(asm, map, a, b, f, dfde / s.rest_length);
    }
    (forces, lengths)
}

/// External loads, each scaled by its factor.
pub(crate) fn loads(
    model: &Model,
    map: &DofMap,
    st: &State,
    loads: &[(&Load, f64)],
    asm: &mut Asm,
) -> Result<(), FemError> {
    for &(load, s) in loads {
        if s == 0.0 {
            continue;
        }
        match load {
            Load::NodeForce { node, force } => {
                let p = st.node(model, map, *node);
                asm.add_external(map, &p, &(V3::from(*force) * s));
            }
            Load::BodyForce { body, force } => {
                for (slot, fk) in map.body[*body][..3].iter().zip(force) {
                    asm.add_external_slot(map, *slot, fk * s);
                }
            }
            Load::BodyMoment { body, moment } => {
                for (slot, mk) in map.body[*body][3..].iter().zip(moment) {
                    asm.add_external_slot(map, *slot, mk * s);
                }
            }
            Load::FollowerPair { a, b, magnitude } => {
                // Pulling a and b together acts like a cable of constant tension (written
                // in internal-force form and booked as an external load).
                let pa = st.point(model, map, a);
                let pb = st.point(model, map, b);
                asm.ext_mode = true;
                two_point(asm, map, pa, pb, magnitude * s, 0.0);
                asm.ext_mode = false;
            }
            Load::Pressure { faces, pressure } => {
                super::pressure::pressure(model, map, st, faces, pressure * s, asm)?;
            }
        }
    }
    Ok(())
}
