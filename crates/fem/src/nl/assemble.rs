//! Residual and tangent assembly: generalised forces of points mapped through the point
//! kinematics (free node or point on a rigid body), solids, springs and loads (beams:
//! `beam.rs`).

use rayon::prelude::*;

use super::kin::{skew, DofMap, Kin, Pk, Slot, State, M3, V3};
use super::{Load, Model, SpringLaw};
use crate::continuum::{tl_kernel, uses_fbar, MAX_DOF, MAX_NODES};
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
    /// The tangent as a dense `neq x neq` row-major matrix (tests of small models).
    #[cfg(test)]
    pub(crate) fn dense(&self, neq: usize) -> Vec<f64> {
        let mut k = vec![0.0; neq * neq];
        for (&(r, c), v) in self.idx.iter().zip(&self.val) {
            k[r as usize * neq + c as usize] += v;
        }
        k
    }

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
    pub tie: Vec<bool>,
    /// Block material index of each element (None: in no block).
    pub block_of: Vec<Option<usize>>,
}

/// Generalised DOFs of one element: the distinct slots its points move with (3 per free
/// node, 6 per body it is tied to), equations first, and for each position component the
/// generalised DOFs it depends on (the rows of `T`: `dx = T dq`).
struct Local {
    /// Distinct slots, equations first; `neq` of them are equations.
    slots: [Slot; MAX_LOCAL],
    m: usize,
    neq: usize,
    /// Per position component `3a + i`: up to 3 (local DOF, coefficient) terms.
    rows: [[(u8, f64); 3]; MAX_DOF],
    nterms: [u8; MAX_DOF],
}

/// Most generalised DOFs of one element (every node free, or tied to a body of its own).
const MAX_LOCAL: usize = 6 * MAX_NODES;

impl Local {
    /// The generalised DOFs of points with kinematics `kins` (the arms only enter the
    /// coefficients, so zero arms give the right slots and counts).
    fn new(kins: impl Iterator<Item = Kin>) -> Local {
        let mut l = Local {
            slots: [Slot::Off; MAX_LOCAL],
            m: 0,
            neq: 0,
            rows: [[(0, 0.0); 3]; MAX_DOF],
            nterms: [0; MAX_DOF],
        };
        let add = |l: &mut Local, s: Slot| -> Option<u8> {
            if s == Slot::Off {
                return None;
            }
            if let Some(k) = l.slots[..l.m].iter().position(|&t| t == s) {
                return Some(k as u8);
            }
            l.slots[l.m] = s;
            l.m += 1;
            Some((l.m - 1) as u8)
        };
        for (a, kin) in kins.enumerate() {
            match kin {
                Kin::Node(s) => {
                    for (i, &si) in s.iter().enumerate() {
                        if let Some(k) = add(&mut l, si) {
                            l.rows[3 * a + i][0] = (k, 1.0);
                            l.nterms[3 * a + i] = 1;
                        }
                    }
                }
                Kin::Body { slots, r } => {
                    // dx = dc - skew(r) dtheta.
                    let t = -skew(&r);
                    for i in 0..3 {
                        let mut nt = 0;
                        if let Some(k) = add(&mut l, slots[i]) {
                            l.rows[3 * a + i][nt] = (k, 1.0);
                            nt += 1;
                        }
                        for kk in 0..3 {
                            if kk == i {
                                continue;
                            }
                            if let Some(k) = add(&mut l, slots[3 + kk]) {
                                l.rows[3 * a + i][nt] = (k, t[(i, kk)]);
                                nt += 1;
                            }
                        }
                        l.nterms[3 * a + i] = nt as u8;
                    }
                }
            }
        }
        // Equations first (a stable partition keeps the order deterministic; in place of a
        // sort, which allocated for every element at every assembly).
        let mut perm = [0u8; MAX_LOCAL];
        let old = l.slots;
        let mut new = 0;
        for eqs in [true, false] {
            for k in 0..l.m {
                if matches!(old[k], Slot::Eq(_)) == eqs {
                    perm[k] = new as u8;
                    l.slots[new] = old[k];
                    new += 1;
                }
            }
            if eqs {
                l.neq = new;
            }
        }
        for (row, &nt) in l.rows.iter_mut().zip(&l.nterms) {
            for t in &mut row[..nt as usize] {
                t.0 = perm[t.0 as usize];
            }
        }
        l
    }

    /// Triplets this element adds to the equations and to the prescribed coupling.
    fn counts(&self) -> (usize, usize) {
        (self.neq * self.neq, self.neq * (self.m - self.neq))
    }

    fn local(&self, s: Slot) -> Option<usize> {
        self.slots[..self.m].iter().position(|&t| t == s)
    }
}

/// Solid elements, in parallel. The elements are split into a fixed number of contiguous
/// chunks whose triplets are written, in element order, straight into their part of the
/// pre-sized triplet vectors: no vector grows or is merged (the memmove of a fold/reduce
/// showed as 15 % of a profile) and the triplet sequence is the same at every assembly,
/// so the linear solver recognises its pattern without looking every triplet up again.
/// Each element's tangent is condensed onto its distinct generalised DOFs before it is
/// written (`T^T K T`, one entry per DOF pair), which for elements tied to a body is far
/// fewer triplets than one 3x3 block per node pair.
pub(crate) fn solids(
    model: &Model,
    map: &DofMap,
    st: &State,
    act: &Active,
    tangent: bool,
    spare: Option<Asm>,
) -> Result<Asm, FemError> {
    let ns = map.nslots();
    let elems: Vec<usize> = (0..model.mesh.num_elements())
        .filter(|&e| act.element[e] && act.block_of[e].is_some())
        .collect();
    let kin_of = |n: usize| match map.tied[n] {
        Some(b) => Kin::Body {
            slots: map.body[b],
            r: V3::zeros(),
        },
        None => Kin::Node(map.node[n]),
    };
    let nchunk = (4 * rayon::current_num_threads()).clamp(1, elems.len().max(1));
    let per = elems.len().div_ceil(nchunk).max(1);
    let chunks: Vec<&[usize]> = elems.chunks(per).collect();
    // Triplet counts per chunk (the slots do not depend on the state).
    let counts: Vec<(usize, usize)> = if tangent {
        chunks
            .par_iter()
            .map(|c| {
                c.iter().fold((0, 0), |acc, &e| {
                    let l = Local::new(model.mesh.element_nodes(e).iter().map(|&n| kin_of(n)));
                    let (a, b) = l.counts();
                    (acc.0 + a, acc.1 + b)
                })
            })
            .collect()
    } else {
        vec![(0, 0); chunks.len()]
    };
    let (neq_t, nfix_t) = counts
        .iter()
        .fold((0, 0), |acc, c| (acc.0 + c.0, acc.1 + c.1));
    // A spare assembly's vectors are reused: the triplets below `neq_t` and `nfix_t` are
    // all overwritten by the elements, so they are only truncated (no memset).
    let mut asm = match spare {
        Some(mut a) => {
            for f in [&mut a.f_int, &mut a.f_ext] {
                f.clear();
                f.resize(ns, 0.0);
            }
            a.tangent = tangent;
            a.ext_mode = false;
            a
        }
        None => Asm::new(ns, tangent),
    };
    asm.idx.truncate(neq_t);
    asm.val.truncate(neq_t);
    asm.idx_fix.truncate(nfix_t);
    asm.val_fix.truncate(nfix_t);
    // Room for the springs, contacts and loads assembled after the solids (capacity that
    // is never touched costs no memory).
    let room = (neq_t + neq_t / 2).saturating_sub(asm.idx.len());
    asm.idx.reserve_exact(room);
    asm.val.reserve_exact(room);
    asm.idx.resize(neq_t, (0, 0));
    asm.val.resize(neq_t, 0.0);
    asm.idx_fix.resize(nfix_t, (0, 0));
    asm.val_fix.resize(nfix_t, 0.0);
    // Disjoint output slices, one per chunk.
    let mut jobs = Vec::with_capacity(chunks.len());
    {
        let (mut idx, mut val) = (&mut asm.idx[..], &mut asm.val[..]);
        let (mut idf, mut vaf) = (&mut asm.idx_fix[..], &mut asm.val_fix[..]);
        for (c, &(a, b)) in chunks.iter().zip(&counts) {
            let (i0, i1) = idx.split_at_mut(a);
            let (v0, v1) = val.split_at_mut(a);
            let (f0, f1) = idf.split_at_mut(b);
            let (w0, w1) = vaf.split_at_mut(b);
            jobs.push((*c, i0, v0, f0, w0));
            (idx, val, idf, vaf) = (i1, v1, f1, w1);
        }
    }
    let forces: Vec<Vec<f64>> = jobs
        .into_par_iter()
        .map(|(c, idx, val, idf, vaf)| {
            let mut f_int = vec![0.0; ns];
            let (mut p, mut q) = (0, 0);
            let mut fe = [0.0; MAX_DOF];
            let mut ke = [0.0; MAX_DOF * MAX_DOF];
            let mut kt = [0.0; MAX_DOF * MAX_LOCAL];
            let mut kg = [0.0; MAX_LOCAL * MAX_LOCAL];
            for &e in c {
                let blk = &model.solids[act.block_of[e].unwrap_or(0)];
                let nodes = model.mesh.element_nodes(e);
                let kind = model.mesh.kinds[e];
                let nn = nodes.len();
                let nd = 3 * nn;
                let mut x0 = [[0.0; 3]; MAX_NODES];
                let mut u = [[0.0; 3]; MAX_NODES];
                let mut pts = [Pk {
                    x: V3::zeros(),
                    kin: Kin::Node([Slot::Off; 3]),
                }; MAX_NODES];
                for (a, &n) in nodes.iter().enumerate() {
                    x0[a] = model.mesh.nodes[n];
                    pts[a] = st.node(model, map, n);
                    u[a] = std::array::from_fn(|i| pts[a].x[i] - x0[a][i]);
                }
                tl_kernel(
                    kind,
                    &x0[..nn],
                    &u[..nn],
                    blk.material.as_ref(),
                    e,
                    uses_fbar(kind),
                    &mut fe,
                    tangent.then_some(&mut ke),
                    false,
                )?;
                let l = Local::new(pts[..nn].iter().map(|p| p.kin));
                let m = l.m;
                // Generalised forces T^T f.
                for (d, &fd) in fe[..nd].iter().enumerate() {
                    for &(k, t) in &l.rows[d][..l.nterms[d] as usize] {
                        if let Some(i) = map.idx(l.slots[k as usize]) {
                            f_int[i] += t * fd;
                        }
                    }
                }
                if !tangent {
                    continue;
                }
                // K T (nd x m), then T^T (K T) (m x m).
                kt[..nd * m].fill(0.0);
                for r in 0..nd {
                    let krow = &ke[r * nd..(r + 1) * nd];
                    let out = &mut kt[r * m..(r + 1) * m];
                    for (d, &kv) in krow.iter().enumerate() {
                        for &(k, t) in &l.rows[d][..l.nterms[d] as usize] {
                            out[k as usize] += kv * t;
                        }
                    }
                }
                kg[..m * m].fill(0.0);
                for d in 0..nd {
                    let ktrow = &kt[d * m..(d + 1) * m];
                    for &(k, t) in &l.rows[d][..l.nterms[d] as usize] {
                        let out = &mut kg[k as usize * m..(k as usize + 1) * m];
                        for (o, &v) in out.iter_mut().zip(ktrow) {
                            *o += t * v;
                        }
                    }
                }
                // Rotational geometric term of body points, skew(f) skew(r).
                for (a, pk) in pts[..nn].iter().enumerate() {
                    if let Kin::Body { slots, r } = pk.kin {
                        let f = V3::new(fe[3 * a], fe[3 * a + 1], fe[3 * a + 2]);
                        let g = skew(&f) * skew(&r);
                        for i in 0..3 {
                            let Some(li) = l.local(slots[3 + i]) else {
                                continue;
                            };
                            for j in 0..3 {
                                if let Some(lj) = l.local(slots[3 + j]) {
                                    kg[li * m + lj] += g[(i, j)];
                                }
                            }
                        }
                    }
                }
                for ri in 0..l.neq {
                    let Slot::Eq(i) = l.slots[ri] else {
                        unreachable!("equations come first")
                    };
                    for cj in 0..m {
                        let v = kg[ri * m + cj];
                        match l.slots[cj] {
                            Slot::Eq(j) => {
                                idx[p] = (i as u32, j as u32);
                                val[p] = v;
                                p += 1;
                            }
                            Slot::Fix(j) => {
                                idf[q] = (i as u32, j as u32);
                                vaf[q] = v;
                                q += 1;
                            }
                            Slot::Off => {}
                        }
                    }
                }
            }
            debug_assert!(p == idx.len() && q == idf.len());
            Ok(f_int)
        })
        .collect::<Result<_, FemError>>()?;
    // Summed in chunk order: the same forces, to the last bit, at every assembly.
    for f in forces {
        for (a, b) in asm.f_int.iter_mut().zip(&f) {
            *a += b;
        }
    }
    Ok(asm)
}

/// Force (N) and its derivative with respect to strain of a spring law (tension-only but
/// for trusses). The slope at exactly zero strain is the tension-side one, so a spring at
/// its rest length is stiff.
pub(crate) fn law_force(law: &SpringLaw, eps: f64) -> (f64, f64) {
    if eps < 0.0 && !matches!(law, SpringLaw::Truss { .. }) {
        return (0.0, 0.0);
    }
    match law {
        SpringLaw::Linear { k } | SpringLaw::Truss { k } => (k * eps, *k),
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
        SpringLaw::Linear { k } | SpringLaw::Truss { k } if !ok(*k) => {
            bad("stiffness k must be finite and >= 0")
        }
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
    act: &Active,
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
            Load::Gravity {
                elements,
                density,
                acceleration,
            } => {
                let b = acceleration.map(|a| a * density * s);
                for &e in elements {
                    if !(act.element[e] && act.block_of[e].is_some()) {
                        continue;
                    }
                    // A node tied to a body passes its share on as a force at its current
                    // position on the body (add_external adds that moment's load stiffness).
                    crate::bc::element_body_force(&model.mesh, e, b, |n, f| {
                        let p = st.node(model, map, n);
                        asm.add_external(map, &p, &V3::from(f));
                    })?;
                }
            }
        }
    }
    Ok(())
}
