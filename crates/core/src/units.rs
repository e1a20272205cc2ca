//! Physical units and frames used throughout spinetwin.
//!
//! Inside the code every quantity is in a consistent unit system chosen so that the finite
//! element equations need no conversion factors:
//!
//! | quantity | unit |
//! |---|---|
//! | length | millimetre (mm) |
//! | force | newton (N) |
//! | stress, modulus, pressure | megapascal (MPa = N/mm^2) |
//! | moment | newton-millimetre (N mm); the CLI accepts and prints N m |
//! | time | second (s) |
//! | mass | tonne (t), so that N = t mm / s^2 |
//! | density | t/mm^3 internally; g/cm^3 only at the user-facing edge |
//! | angle | radian internally; degree only at the user-facing edge |
//!
//! Frames: patient coordinates are DICOM LPS (x towards the patient's Left, y Posterior,
//! z Superior) everywhere inside. NIfTI files are RAS; the conversion happens only in the
//! NIfTI reader and writer. Each vertebra later gets a local anatomical frame expressed in LPS.

/// Degrees to radians. Use at the user-facing edge only (CLI arguments, reports).
#[inline]
pub fn deg_to_rad(deg: f64) -> f64 {
    deg.to_radians()
}

/// Radians to degrees. Use at the user-facing edge only (CLI output, reports).
#[inline]
pub fn rad_to_deg(rad: f64) -> f64 {
    rad.to_degrees()
}

/// N m (as surgeons and lab protocols quote moments) to the internal N mm.
#[inline]
pub fn newton_metre_to_newton_mm(nm: f64) -> f64 {
    nm * 1000.0
}

/// Apparent density in g/cm^3 (as published density laws use) to the internal t/mm^3.
#[inline]
pub fn g_per_cm3_to_tonne_per_mm3(g_cm3: f64) -> f64 {
    // 1 g/cm^3 = 1e-6 kg/mm^3... = 1e-9 t/mm^3
    g_cm3 * 1.0e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_exact_inverses_and_scaled_right() {
        assert!((rad_to_deg(deg_to_rad(37.5)) - 37.5).abs() < 1e-12);
        assert!((deg_to_rad(180.0) - std::f64::consts::PI).abs() < 1e-15);
        assert_eq!(newton_metre_to_newton_mm(7.5), 7500.0);
        // Water: 1 g/cm^3 = 1000 kg/m^3 = 1e-9 t/mm^3.
        assert!((g_per_cm3_to_tonne_per_mm3(1.0) - 1.0e-9).abs() < 1e-24);
    }
}
