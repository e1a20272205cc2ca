//! What a report says about the model behind its numbers: which twin (by pseudonym, never a
//! patient identifier), what it contains, which parameters differ from the validated
//! defaults, and how the default model fared against the published experiments.

use serde::Serialize;

use crate::ligament::{Ligament, LigamentSet};
use crate::twin::{PosteriorContact, Twin, TwinParams};
use crate::validate::{committed, ValidationRow};

/// A patient-free description of a twin for the header of a report.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    /// The twin's pseudonym (`build --pseudonym`, else drawn at random when it was built;
    /// empty for twins written before pseudonyms existed).
    pub pseudonym: String,
    /// Where the anatomy came from (no patient identifiers: see [`crate::twin::TwinFile`]).
    pub source: String,
    /// spinetwin version that wrote the report.
    pub spinetwin_version: String,
    /// Modelled vertebrae, cranial first.
    pub levels: Vec<String>,
    /// Discs modelled.
    pub discs: usize,
    /// Disc elements in all.
    pub disc_elements: usize,
    /// Ligament fibres per ligament (abbreviation, count); ligaments without fibres are
    /// left out.
    pub ligament_fibres: Vec<(String, usize)>,
    /// Facet joints modelled.
    pub facet_joints: usize,
    /// See [`PosteriorContact::BonyStop`].
    pub bony_stops: usize,
    /// The constitutive choices, one line each, with their numbers.
    pub materials: Vec<String>,
    /// Parameters that differ from the defaults the validation was run with
    /// (`path: value (default value)`); empty when the twin uses the defaults.
    pub parameter_changes: Vec<String>,
    /// The twin's model warnings (what was left out or looked unusual when it was built;
    /// the segmentation's own warnings are in the build's summary.json).
    pub warnings: Vec<String>,
    /// The committed validation of the default model on the built-in phantom.
    pub validation: Vec<ValidationRow>,
}

impl ModelSummary {
    /// Describes `twin` as built (call it on the intact twin, before any operation).
    pub fn of(twin: &Twin) -> ModelSummary {
        let p = &twin.file.params;
        let ligament_fibres = Ligament::ALL
            .iter()
            .map(|l| {
                let n = twin.fibres.iter().filter(|f| f.ligament == *l).count();
                (l.abbreviation().to_string(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let m = &p.disc_materials;
        let mut materials = vec![
            format!(
                "Annulus: Holzapfel-Gasser-Ogden, C10 {} MPa, bulk modulus {:.2} MPa, fibres k1 {} MPa, k2 {}, dispersion {}, at +/-{} deg alternating by lamella{}",
                m.annulus_c10,
                m.annulus_bulk,
                m.fibre_k1,
                m.fibre_k2,
                m.fibre_kappa,
                p.disc_mesh.fibre_angle_deg,
                if m.fibre_full_invariants { "" } else { " (isochoric fibre invariants: a twin built before 2026-12-02)" }
            ),
            format!(
                "Nucleus: Mooney-Rivlin, C10 {} MPa, C01 {} MPa, nearly incompressible (bulk modulus {:.0} MPa), {:.0} % of the disc area",
                m.nucleus_c10,
                m.nucleus_c01,
                m.nucleus_bulk,
                p.disc_mesh.nucleus_area_fraction * 100.0
            ),
            format!(
                "Ligaments: {}, {} fibres per ligament (per side for the paired ones), pre-strain {}",
                match p.ligaments.set {
                    LigamentSet::GoelBilinear => "bilinear laws of the Goel et al. set",
                    LigamentSet::Remus2021 => "toe-linear laws of Remus et al. 2021",
                },
                p.ligaments.fibres,
                p.ligaments.prestrain
            ),
            format!(
                "Facet joints: frictionless contact through two {} mm cartilage layers (E {} MPa, nu {}), initial gap {} mm",
                p.facets.cartilage_thickness_mm,
                p.facets.cartilage_modulus_mpa,
                p.facets.cartilage_poisson,
                p.facets.initial_gap_mm
            ),
        ];
        if !p.without_ligaments.is_empty() || p.without_facets {
            let mut left: Vec<&str> = p
                .without_ligaments
                .iter()
                .map(|l| l.abbreviation())
                .collect();
            if p.without_facets {
                left.push("facet joints");
            }
            materials.push(format!("Left out: {}", left.join(", ")));
        }
        ModelSummary {
            pseudonym: twin.file.pseudonym.clone(),
            source: twin.file.source.clone(),
            spinetwin_version: env!("CARGO_PKG_VERSION").to_string(),
            levels: twin.levels.iter().map(|l| l.name().to_string()).collect(),
            discs: twin.discs.len(),
            disc_elements: twin.discs.iter().map(|d| d.mesh.mesh.kinds.len()).sum(),
            ligament_fibres,
            facet_joints: twin.contact_count(PosteriorContact::Articular),
            bony_stops: twin.contact_count(PosteriorContact::BonyStop),
            materials,
            parameter_changes: parameter_changes(p),
            warnings: twin.warnings.clone(),
            validation: committed(),
        }
    }

    /// Validation rows inside their band, and all rows.
    pub fn validation_passed(&self) -> (usize, usize) {
        (
            self.validation.iter().filter(|r| r.pass).count(),
            self.validation.len(),
        )
    }

    /// Whether the twin's parameters are the validated defaults.
    pub fn uses_validated_defaults(&self) -> bool {
        self.parameter_changes.is_empty()
    }
}

/// Every leaf of `params` that differs from [`TwinParams::default`], as
/// `path: value (default value)`. Compared through serde so that a parameter added later is
/// covered without touching this function.
pub fn parameter_changes(params: &TwinParams) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                for (k, va) in x {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match y.get(k) {
                        Some(vb) => walk(&p, va, vb, out),
                        None => out.push(format!("{p}: {va}")),
                    }
                }
            }
            (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                // Numbers written to twin.json and read back differ in the last bits only.
                if (x - y).abs() > 1e-9 * x.abs().max(y.abs()).max(1.0) {
                    out.push(format!("{path}: {x} (default {y})"));
                }
            }
            _ if a != b => out.push(format!("{path}: {a} (default {b})")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    // Both serialise (plain data): a failure would be a bug in the derive, not user input.
    let a = serde_json::to_value(params).unwrap_or_default();
    let b = serde_json::to_value(TwinParams::default()).unwrap_or_default();
    walk("", &a, &b, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ligament::CapsuleModel;

    #[test]
    fn defaults_have_no_changes_and_each_change_is_named_with_its_default() {
        assert!(parameter_changes(&TwinParams::default()).is_empty());
        let mut p = TwinParams::default();
        p.disc_materials.annulus_c10 = 0.2;
        p.ligaments.capsule = CapsuleModel::SLEEVE_DEFAULT;
        p.without_facets = true;
        // A value that went through JSON text compares equal.
        let back: TwinParams =
            serde_json::from_str(&serde_json::to_string(&TwinParams::default()).unwrap()).unwrap();
        assert!(parameter_changes(&back).is_empty());
        let c = parameter_changes(&p);
        assert_eq!(c.len(), 3, "{c:?}");
        assert!(c.contains(&"disc_materials.annulus_c10: 0.2 (default 0.1351)".to_string()));
        assert!(c.iter().any(|s| s.starts_with("ligaments.capsule: ")));
        assert!(c.contains(&"without_facets: true (default false)".to_string()));
    }
}
