//! Learned segmentation models behind the same interface as the classical pipeline:
//! [`crate::segment`] with [`crate::SegmentOptions::model`] set runs an ONNX model (by tract,
//! a pure-Rust runtime; cargo feature `onnx`) instead of the thresholds, and returns the same
//! [`Segmentation`]: the label map on the CT grid, one [`LevelReport`](crate::LevelReport)
//! per vertebra (its confidence the model's own mean probability over its voxels), warnings.
//! Landmarks, measures, meshes and the twin then follow as from the classical labels.
//!
//! A model comes with a card, the JSON file next to it (`model.onnx` -> `model.json`,
//! [`ModelCard`]): how HU become its input, which label each output channel is, the voxel
//! spacing it expects and whether to run it in slabs. The model takes one tensor
//! `[1, 1, nk, nj, ni]` (the volume in storage order: i fastest) and gives one
//! `[1, K, nk, nj, ni]` of per-class scores (logits or probabilities; the softmax over K is
//! taken either way).
//!
//! No model is shipped: the classical pipeline is the product's default.
//! `bone_threshold_model` (feature `onnx`) builds the small reference model the tests run the
//! path with.

use crate::{LevelBasis, SegmentError, Segmentation};
use serde::{Deserialize, Serialize};
use spinetwin_anatomy::Level;
use spinetwin_imaging::Volume;
use std::path::{Path, PathBuf};

/// What the runner needs to know about a model: the JSON card beside the ONNX file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// What the model is and what it was trained on (goes into the warnings).
    pub description: String,
    /// HU window the CT is clipped to first.
    pub hu_clip: [f32; 2],
    /// The input is `(clipped HU - hu_offset) / hu_scale`.
    pub hu_offset: f32,
    /// See `hu_offset`.
    pub hu_scale: f32,
    /// Label of each output channel (VerSe numbering: 0 background, 19 T12, 20-25 L1-L6,
    /// 26 sacrum; discs 100 + the vertebra above, canal 200).
    pub labels: Vec<u16>,
    /// Voxel spacing the model expects (mm, along i, j, k): the CT is resampled to it
    /// (trilinear) and the labels back to the CT grid (nearest). None: the CT's own grid.
    #[serde(default)]
    pub spacing_mm: Option<[f64; 3]>,
    /// Run in slabs along k: `[slices per slab, context slices on each side]`; the context
    /// must cover the model's receptive field for the slabs to match a whole-volume run.
    /// None, or a slab with its context as deep as the volume: the whole volume at once.
    #[serde(default)]
    pub slab: Option<[usize; 2]>,
}

/// The card of `model`: the same path with the extension `json`.
pub fn card_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

fn model_err(model: &Path, what: impl std::fmt::Display) -> SegmentError {
    SegmentError::Model(format!("{}: {what}", model.display()))
}

/// Reads and checks the card of `model`.
pub fn read_card(model: &Path) -> Result<ModelCard, SegmentError> {
    let p = card_path(model);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        model_err(
            model,
            format!(
                "its model card {} could not be read ({e}); write one (see the spinetwin_segment::learned docs)",
                p.display()
            ),
        )
    })?;
    let card: ModelCard = serde_json::from_str(&text)
        .map_err(|e| model_err(model, format!("model card {}: {e}", p.display())))?;
    if card.labels.len() < 2 {
        return Err(model_err(
            model,
            "the model card names fewer than two output channels",
        ));
    }
    if !(card.hu_scale.is_finite() && card.hu_scale != 0.0) || card.hu_clip[0] >= card.hu_clip[1] {
        return Err(model_err(
            model,
            "the model card's hu_scale is zero or hu_clip empty",
        ));
    }
    if card.slab.is_some_and(|s| s[0] == 0) {
        return Err(model_err(model, "the model card's slab has no slices"));
    }
    Ok(card)
}

#[cfg(feature = "onnx")]
mod run {
    use super::*;
    use tract_onnx::prelude::*;

    type Plan = std::sync::Arc<TypedRunnableModel>;

    /// Loads `model` for an input of `dims` (i, j, k).
    pub(super) fn load(model: &Path, dims: [usize; 3]) -> Result<Plan, SegmentError> {
        let shape = [1, 1, dims[2], dims[1], dims[0]];
        tract_onnx::onnx()
            .model_for_path(model)
            .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| {
                model_err(
                    model,
                    format!("could not be loaded for a {shape:?} input: {e:#}"),
                )
            })
    }

    /// Scores `[K][k][j][i]` of one input block `[k][j][i]`.
    pub(super) fn infer(
        plan: &Plan,
        model: &Path,
        input: Vec<f32>,
        dims: [usize; 3],
        k_out: usize,
    ) -> Result<Vec<f32>, SegmentError> {
        let t = tract_ndarray::Array5::from_shape_vec((1, 1, dims[2], dims[1], dims[0]), input)
            .map_err(|e| model_err(model, e))?;
        let out = plan
            .run(tvec!(Tensor::from(t).into()))
            .map_err(|e| model_err(model, format!("inference failed: {e:#}")))?;
        let v = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| model_err(model, format!("its output is not f32 scores: {e:#}")))?;
        let want = [1, k_out, dims[2], dims[1], dims[0]];
        if v.shape() != want {
            return Err(model_err(
                model,
                format!(
                    "its output has the shape {:?}, the card wants {want:?} (one channel per label)",
                    v.shape()
                ),
            ));
        }
        Ok(v.iter().copied().collect())
    }
}

/// Runs `model` (ONNX, with its card) on `ct` and assembles the [`Segmentation`]; see the
/// module docs. Errors name the model file and what is wrong with it or its card. In slabs,
/// the context beyond the volume's first and last slices repeats them.
pub fn segment_with_model(ct: &Volume<f32>, model: &Path) -> Result<Segmentation, SegmentError> {
    #[cfg(not(feature = "onnx"))]
    {
        let _ = ct;
        Err(model_err(
            model,
            "this spinetwin was built without ONNX support; build it with `--features onnx` to run a learned model",
        ))
    }
    #[cfg(feature = "onnx")]
    {
        use crate::StageTiming;
        use spinetwin_imaging::Interpolation;
        let t0 = std::time::Instant::now();
        let card = read_card(model)?;
        let work = match card.spacing_mm {
            Some(sp) => {
                let g = ct
                    .grid()
                    .with_spacing(sp)
                    .map_err(|e| model_err(model, format!("the card's spacing_mm: {e}")))?;
                ct.resample(&g, Interpolation::Trilinear, -1000.0)
            }
            None => ct.clone(),
        };
        let dims = work.grid().dims;
        let input: Vec<f32> = work
            .data()
            .iter()
            .map(|&h| (h.clamp(card.hu_clip[0], card.hu_clip[1]) - card.hu_offset) / card.hu_scale)
            .collect();
        let kk = card.labels.len();
        let plane = dims[0] * dims[1];
        // Slabs along k, each with its context, all of one shape (the last one's context
        // repeats the edge slice) so that one plan serves them all.
        let (depth, ctx) = match card.slab {
            Some([d, c]) if d + 2 * c < dims[2] => (d, c),
            _ => (dims[2], 0),
        };
        let block = [dims[0], dims[1], depth + 2 * ctx];
        let plan = run::load(model, block)?;
        let t_load = t0.elapsed().as_secs_f64();
        // Per voxel: the best channel and its softmax probability, slab by slab (the
        // scores of a whole volume would take K times its memory).
        let nvox = dims[2] * plane;
        let mut lab = vec![0u16; nvox];
        let mut prob = vec![0f32; nvox];
        let per_channel = block[2] * plane;
        let mut k0 = 0;
        while k0 < dims[2] {
            let mut inp = Vec::with_capacity(per_channel);
            for s in 0..block[2] {
                let k = (k0 as i64 + s as i64 - ctx as i64).clamp(0, dims[2] as i64 - 1) as usize;
                inp.extend_from_slice(&input[k * plane..(k + 1) * plane]);
            }
            let out = run::infer(&plan, model, inp, block, kk)?;
            let n = depth.min(dims[2] - k0);
            for s in 0..n {
                for q in 0..plane {
                    let at = (ctx + s) * plane + q;
                    let score = |c: usize| out[c * per_channel + at];
                    let (mut best, mut top) = (0, f32::NEG_INFINITY);
                    for c in 0..kk {
                        if score(c) > top {
                            (best, top) = (c, score(c));
                        }
                    }
                    let z: f32 = (0..kk).map(|c| (score(c) - top).exp()).sum();
                    let v = (k0 + s) * plane + q;
                    lab[v] = card.labels[best];
                    prob[v] = 1.0 / z;
                }
            }
            k0 += depth;
        }
        let t_infer = t0.elapsed().as_secs_f64() - t_load;
        let on_work =
            |d: Vec<u16>| Volume::new(work.grid().clone(), d).map_err(|e| model_err(model, e));
        let probs = Volume::new(work.grid().clone(), prob).map_err(|e| model_err(model, e))?;
        let (labels, probs) = if card.spacing_mm.is_some() {
            (
                on_work(lab)?.resample(ct.grid(), Interpolation::Nearest, 0),
                probs.resample(ct.grid(), Interpolation::Nearest, 0.0),
            )
        } else {
            (on_work(lab)?, probs)
        };
        let mut seg = assemble(ct, labels, &probs, &card);
        seg.timings = vec![
            StageTiming {
                stage: "model load".into(),
                seconds: t_load,
            },
            StageTiming {
                stage: "inference".into(),
                seconds: t_infer,
            },
            StageTiming {
                stage: "levels".into(),
                seconds: t0.elapsed().as_secs_f64() - t_load - t_infer,
            },
        ];
        Ok(seg)
    }
}

/// The [`Segmentation`] of a model's label map and per-voxel probabilities: the reports and
/// checks of a label map made elsewhere (`given::levels_of`), each vertebra's confidence the
/// mean probability over its voxels, and a scan warning naming the model.
#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
fn assemble(
    ct: &Volume<f32>,
    labels: Volume<u16>,
    probs: &Volume<f32>,
    card: &ModelCard,
) -> Segmentation {
    let (levels, found) = crate::given::levels_of(ct, &labels, Some(probs));
    let mut warnings = vec![format!(
        "labels from a learned model ({}; ONNX, run by tract), not from spinetwin's validated classical pipeline: check the overview",
        card.description
    )];
    warnings.extend(found);
    Segmentation {
        labels,
        sacrum_found: levels.iter().any(|l| l.level == Level::S1),
        levels,
        bone_threshold_hu: f32::NAN,
        level_basis: LevelBasis::Model,
        warnings,
        timings: Vec::new(),
    }
}

/// The reference model the ONNX path is tested with (made here, not trained): a 3 x 3 x 3
/// mean filter (zero padding) of its input and two channels whose scores are minus and plus
/// that mean; with its card ([`bone_threshold_card`]: input `(HU - threshold) / 1000`) a
/// voxel gets the second channel's label where the mean HU of its 27 neighbours is above the
/// threshold. Serialised ONNX (opset 13).
#[cfg(feature = "onnx")]
pub fn bone_threshold_model() -> Vec<u8> {
    use prost::Message;
    use tract_onnx::pb;
    let tensor = |name: &str, dims: Vec<i64>, data: Vec<f32>| pb::TensorProto {
        name: name.into(),
        dims,
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: data,
        ..Default::default()
    };
    let value = |name: &str| pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let ints = |name: &str, v: Vec<i64>| pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    };
    // Conv weights [out 2][in 1][3][3][3]: -1/27 and +1/27 (the mean, negated for the
    // background).
    let w: Vec<f32> = (0..54)
        .map(|i| if i < 27 { -1.0 / 27.0 } else { 1.0 / 27.0 })
        .collect();
    let graph = pb::GraphProto {
        name: "bone_threshold".into(),
        node: vec![pb::NodeProto {
            name: "mean".into(),
            op_type: "Conv".into(),
            input: vec!["hu".into(), "w".into()],
            output: vec!["scores".into()],
            attribute: vec![
                ints("kernel_shape", vec![3, 3, 3]),
                ints("pads", vec![1, 1, 1, 1, 1, 1]),
            ],
            ..Default::default()
        }],
        initializer: vec![tensor("w", vec![2, 1, 3, 3, 3], w)],
        input: vec![value("hu")],
        output: vec![value("scores")],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 7,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "spinetwin".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The card of `bone_threshold_model`: input `(HU - threshold) / 1000`, channels
/// background and `label`, optionally in slabs.
pub fn bone_threshold_card(threshold_hu: f32, label: u16, slab: Option<[usize; 2]>) -> ModelCard {
    ModelCard {
        description: format!(
            "spinetwin's reference model: 3 x 3 x 3 mean HU above {threshold_hu} -> label {label}"
        ),
        hu_clip: [-1024.0, 3071.0],
        hu_offset: threshold_hu,
        hu_scale: 1000.0,
        labels: vec![0, label],
        spacing_mm: None,
        slab,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spinetwin_imaging::Grid;

    /// A label map the way a poor model might leave it: L1, then L3 in two pieces, then L4
    /// above L3 instead of below.
    #[test]
    fn a_models_levels_are_checked_for_pieces_order_and_gaps() {
        let g = Grid::new(
            [20, 20, 40],
            [1.0; 3],
            nalgebra::Vector3::zeros(),
            nalgebra::Matrix3::identity(),
        )
        .unwrap();
        let mut lab = Volume::new(g.clone(), vec![0u16; g.len()]).unwrap();
        let mut put = |l: Level, i: std::ops::Range<usize>, k: std::ops::Range<usize>| {
            for kk in k {
                for j in 5..10 {
                    for ii in i.clone() {
                        lab.set(ii, j, kk, l.verse_label());
                    }
                }
            }
        };
        put(Level::L1, 5..10, 30..35);
        put(Level::L3, 2..6, 10..14);
        put(Level::L3, 12..16, 10..14);
        put(Level::L4, 5..10, 20..24);
        let ct = Volume::new(g.clone(), vec![300f32; g.len()]).unwrap();
        let probs = Volume::new(g.clone(), vec![0.8f32; g.len()]).unwrap();
        let seg = assemble(&ct, lab, &probs, &bone_threshold_card(150.0, 22, None));
        let names: Vec<&str> = seg.levels.iter().map(|l| l.level.name()).collect();
        assert_eq!(names, ["L1", "L3", "L4"]);
        let l1 = &seg.levels[0];
        assert!(l1.warnings.is_empty() && (l1.confidence - 0.8).abs() < 1e-6);
        assert!((l1.mean_hu - 300.0).abs() < 1e-9 && l1.voxels == 125);
        assert!(
            seg.levels[1]
                .warnings
                .iter()
                .any(|w| w.contains("2 pieces")),
            "{:?}",
            seg.levels[1].warnings
        );
        let l4 = &seg.levels[2];
        assert!(l4.warnings.iter().any(|w| w.contains("out of order")));
        assert!(l4.confidence <= 0.3);
        assert!(
            seg.warnings
                .iter()
                .any(|w| w.contains("no L2 between L1 and L3")),
            "{:?}",
            seg.warnings
        );
        assert_eq!(seg.level_basis, LevelBasis::Model);
        assert!(!seg.sacrum_found);
    }
}
