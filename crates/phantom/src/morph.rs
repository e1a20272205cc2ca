//! Per-level dimensions of the phantom's vertebrae and discs (mm, degrees in the table).
//!
//! Lumbar values are rounded means after Panjabi MM, Goel V, Oxland T, et al. "Human lumbar
//! vertebrae. Quantitative three-dimensional anatomy." Spine 1992;17(3):299-306 (upper
//! endplate width EPWu and depth EPDu, posterior body height VBHp, pedicle width PDW and
//! height PDH, pedicle transverse angle PDIt, spinal canal width SCW and depth SCD, spinous
//! process length SPL, transverse process width TPW, facet transverse angle), cross-checked
//! against recent CT morphometry of L5 (posterior body height ~26 mm, pedicle height ~13 mm,
//! width ~16 mm, canal depth ~16 mm). Values should be re-checked against the paper's tables
//! before they are quoted as Panjabi's numbers.
//! T10-T12 values are extrapolated from the same sources (smaller bodies, coronal thoracic
//! facets above T12). The sacrum (S1) uses typical adult values (endplate ~50 x 36 mm).
//!
//! Disc mid-heights follow the lumbar disc heights of Pooni JS et al., "Comparison of the
//! structure of human intervertebral discs in the cervical, thoracic and lumbar regions of
//! the spine", Surg Radiol Anat 1986;8:175-182, and Zhou SH et al., "Geometrical dimensions
//! of the lumbar vertebrae - analysis of data from digitised CT images", Eur Spine J
//! 2000;9:242-248: about 8-12 mm, tallest at L4-L5 and L5-S1.
//!
//! These are population means for a generic adult; the phantom is a plausible spine, not a
//! particular person.

use spinetwin_anatomy::Level;

/// Dimensions of one vertebra (mm; angles in degrees).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LevelMorph {
    /// Endplate width (left-right).
    pub epw: f64,
    /// Endplate depth (antero-posterior, mid-sagittal).
    pub epd: f64,
    /// Posterior body height.
    pub h_post: f64,
    /// Pedicle minimum width (transverse).
    pub ped_w: f64,
    /// Pedicle minimum height.
    pub ped_h: f64,
    /// Pedicle transverse (medial convergence) angle to the sagittal plane.
    pub ped_angle: f64,
    /// Spinal canal width (interpedicular).
    pub canal_w: f64,
    /// Spinal canal depth (posterior body wall to lamina junction).
    pub canal_d: f64,
    /// Spinous process length from the lamina junction to the tip.
    pub sp_len: f64,
    /// Spinous process height (cranio-caudal) at the tip.
    pub sp_h: f64,
    /// Transverse process tip-to-tip width (0 = none, e.g. the sacrum).
    pub tp_span: f64,
    /// Angle of the superior facet joint to the sagittal plane (transverse view).
    pub facet: f64,
}

#[allow(clippy::too_many_arguments)] // one table row, in column order
const fn m(
    epw: f64,
    epd: f64,
    h_post: f64,
    ped_w: f64,
    ped_h: f64,
    ped_angle: f64,
    canal_w: f64,
    canal_d: f64,
    sp_len: f64,
    sp_h: f64,
    tp_span: f64,
    facet: f64,
) -> LevelMorph {
    LevelMorph {
        epw,
        epd,
        h_post,
        ped_w,
        ped_h,
        ped_angle,
        canal_w,
        canal_d,
        sp_len,
        sp_h,
        tp_span,
        facet,
    }
}

/// The dimensions of `level`.
pub(crate) fn morph(level: Level) -> LevelMorph {
    //            epw   epd   hpost pedW  pedH  pedA  canW  canD  spL   spH   tpW   facet
    match level {
        Level::T10 => m(
            33.0, 28.0, 21.0, 6.5, 15.0, 4.0, 17.5, 16.0, 30.0, 14.0, 60.0, 70.0,
        ),
        Level::T11 => m(
            35.0, 29.0, 22.0, 7.5, 16.0, 4.0, 18.5, 16.5, 30.0, 16.0, 52.0, 65.0,
        ),
        Level::T12 => m(
            37.5, 30.5, 23.5, 7.8, 16.5, 6.0, 20.5, 17.0, 31.0, 18.0, 50.0, 55.0,
        ),
        Level::L1 => m(
            40.5, 32.0, 25.5, 8.5, 15.5, 11.0, 22.0, 18.0, 31.0, 19.0, 72.0, 22.0,
        ),
        Level::L2 => m(
            43.0, 33.0, 26.5, 9.0, 15.0, 12.0, 22.5, 17.0, 32.0, 20.0, 80.0, 27.0,
        ),
        Level::L3 => m(
            46.5, 34.5, 27.5, 10.5, 14.5, 14.0, 23.0, 16.0, 32.0, 20.0, 90.0, 32.0,
        ),
        Level::L4 => m(
            48.5, 35.0, 27.0, 13.0, 14.0, 18.0, 23.5, 16.0, 31.0, 19.0, 84.0, 38.0,
        ),
        Level::L5 | Level::L6 => m(
            49.5, 35.0, 25.5, 16.5, 13.5, 27.0, 25.0, 16.0, 26.0, 16.0, 82.0, 44.0,
        ),
        Level::S1 => m(
            50.0, 36.0, 28.0, 18.0, 18.0, 30.0, 30.0, 14.0, 12.0, 14.0, 0.0, 50.0,
        ),
    }
}

/// Mid-height (mm) of the disc below `upper`.
pub(crate) fn disc_height(upper: Level) -> f64 {
    match upper {
        Level::T10 => 6.0,
        Level::T11 => 6.5,
        Level::T12 => 7.5,
        Level::L1 => 8.5,
        Level::L2 => 9.5,
        Level::L3 => 10.5,
        Level::L4 => 11.5,
        Level::L5 | Level::L6 => 11.0,
        Level::S1 => 0.0,
    }
}

/// Share of the L1-S1 lordosis taken by the disc below the n-th lumbar vertebra counted
/// from the sacrum (0 = lumbosacral disc) and by the wedging of the n-th lumbar body.
///
/// About two thirds of L1-S1 lordosis lies at L4-S1 (Bernhardt M, Bridwell KH, Spine
/// 1989;14(7):717-721; Been E, Kalichman L, Spine J 2014;14:87-97), mostly in the discs,
/// with a lordotic L5 body wedge (anterior ~3-4 mm taller than posterior). Shares used,
/// lumbosacral upwards: discs 30, 22, 14, 10, 8 %, body wedges L5 12 %, L4 4 %
/// (normalised again when an L6 adds a sixth disc).
pub(crate) fn lordosis_shares(n_lumbar: usize) -> (Vec<f64>, Vec<f64>) {
    let mut discs = vec![30.0, 22.0, 14.0, 10.0, 8.0, 6.0];
    discs.truncate(n_lumbar);
    let mut bodies = vec![0.0; n_lumbar];
    bodies[0] = 12.0;
    if n_lumbar > 1 {
        bodies[1] = 4.0;
    }
    let total: f64 = discs.iter().sum::<f64>() + bodies.iter().sum::<f64>();
    (
        discs.iter().map(|d| d / total).collect(),
        bodies.iter().map(|b| b / total).collect(),
    )
}

/// Coronal tilt of each level's axis as a fraction of the Cobb angle (positive = the
/// superior axis leans to the patient's left). A left-convex lumbar curve with the apex at
/// L2-L3: L1 and L4 are the end vertebrae (L1 - L4 = -1, the full Cobb angle), the sacrum is
/// level and the compensating levels above and below return towards the midline.
pub(crate) fn coronal_tilt_fraction(level: Level) -> f64 {
    match level {
        Level::T10 => -0.05,
        Level::T11 => -0.12,
        Level::T12 => -0.25,
        Level::L1 => -0.5,
        Level::L2 => -0.2,
        Level::L3 => 0.2,
        Level::L4 => 0.5,
        Level::L5 => 0.25,
        Level::L6 => 0.12,
        Level::S1 => 0.0,
    }
}

/// Sacral slope (degrees) for a given L1-S1 lordosis: SS = 5 + 0.6 LL, which reproduces the
/// mean standing values of asymptomatic adults (LL ~60, SS ~41 deg; Vialle R et al., J Bone
/// Joint Surg Am 2005;87:260-267) and gives a near-horizontal sacrum for a flat back.
pub(crate) fn sacral_slope(lordosis_deg: f64) -> f64 {
    5.0 + 0.6 * lordosis_deg
}

/// Axial rotation of each level (fraction of the Cobb angle, positive = the body turned
/// towards the patient's left, the convex side): largest at the apex (L2, L3), about 7.5 deg
/// for a 30 deg curve, in the range of the apical rotation of moderate lumbar curves.
pub(crate) fn axial_rotation_fraction(level: Level) -> f64 {
    match level {
        Level::L1 | Level::L4 => 0.15,
        Level::L2 | Level::L3 => 0.25,
        Level::T12 | Level::L5 => 0.05,
        _ => 0.0,
    }
}
