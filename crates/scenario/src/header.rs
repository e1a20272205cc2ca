//! The header of a report: the twin by pseudonym (never a patient identifier), what the
//! model holds, and how the default model fared against the published experiments. Shared
//! by the plan report and the twin report of `spinetwin simulate` and the demo.

use spinetwin_model::summary::ModelSummary;
use spinetwin_model::validate::ValidationRow;

/// Style rules the header's HTML needs (add them to the page's style sheet).
pub const HEADER_CSS: &str =
    "th.l{text-align:left}table.hdr th{text-align:left;vertical-align:top}\
table.hdr td{text-align:left}table.hdr ul{margin:0;padding-left:1.2em}";

/// The report's header: the twin by pseudonym, what the model holds, and the validation
/// status of the model behind the numbers.
pub fn model_header_html(
    m: &ModelSummary,
    full_fidelity_element_mm: Option<f64>,
    load_cases: &[String],
) -> String {
    let mut h = String::from("<table class='hdr'>");
    let mut row = |k: &str, v: String| {
        h.push_str(&format!("<tr><th>{k}</th><td>{v}</td></tr>"));
    };
    row(
        "Twin",
        if m.pseudonym.is_empty() {
            "<i>no pseudonym (a twin built before pseudonyms existed: rebuild it, or give one with spinetwin build --pseudonym)</i>".to_string()
        } else {
            format!("<b>{}</b>", esc(&m.pseudonym))
        },
    );
    row(
        "Anatomy",
        format!(
            "{}: {} ({} vertebrae, {} discs)",
            esc(&m.source),
            match (m.levels.first(), m.levels.last()) {
                (Some(a), Some(b)) => format!("{a}-{b}"),
                _ => "no levels".to_string(),
            },
            m.levels.len(),
            m.discs
        ),
    );
    row(
        "Model",
        format!(
            "{}; discs of {} elements in all; ligament fibres {}; {} facet joints{}",
            match full_fidelity_element_mm {
                None => "hybrid fidelity (rigid vertebrae)".to_string(),
                Some(mm) => format!(
                    "full fidelity (vertebrae between the top and the bottom one deformable, {mm} mm elements, moduli from the CT's HU)"
                ),
            },
            m.disc_elements,
            m.ligament_fibres
                .iter()
                .map(|(l, n)| format!("{l} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            m.facet_joints,
            if m.bony_stops > 0 {
                format!(", {} bony stops", m.bony_stops)
            } else {
                String::new()
            }
        ),
    );
    row(
        "Materials",
        format!(
            "<ul>{}</ul>",
            m.materials
                .iter()
                .map(|x| format!("<li>{}</li>", esc(x)))
                .collect::<String>()
        ),
    );
    row("Load cases", esc(&load_cases.join(", ")));
    if !m.warnings.is_empty() {
        row(
            "Model warnings",
            format!(
                "<ul>{}</ul>",
                m.warnings
                    .iter()
                    .map(|x| format!("<li>{}</li>", esc(x)))
                    .collect::<String>()
            ),
        );
    }
    row("spinetwin", esc(&m.spinetwin_version));
    h.push_str("</table>");

    let (passed, total) = m.validation_passed();
    h.push_str(&format!(
        "<h2>Validation status</h2><p>The model with its default parameters was compared with published experiments on the built-in phantom's L4-L5 (<code>spinetwin validate</code>, docs/validation/twin_phantom.md): <b>{passed} of {total}</b> results inside the experimental band (mean &plusmn; 1 SD, or the stated tolerance, or &plusmn;25 % of a median given without spread). {} That validation is of the phantom's anatomy at the hybrid fidelity: no experiment measured this twin's own anatomy, so comparisons (between levels, load cases, or scenarios and the intact twin) are more reliable than the absolute values.</p>",
        if m.uses_validated_defaults() {
            "This twin uses those default parameters.".to_string()
        } else {
            format!(
                "<b>This twin's parameters differ from the validated defaults</b> ({}): the validation does not cover them.",
                esc(&m.parameter_changes.join("; "))
            )
        }
    ));
    let failed: Vec<&ValidationRow> = m.validation.iter().filter(|r| !r.pass).collect();
    if !failed.is_empty() {
        h.push_str(&format!("<p>Not met ({}):</p>", failed.len()));
        h.push_str(&validation_table(&failed));
    }
    let all: Vec<&ValidationRow> = m.validation.iter().collect();
    h.push_str(&format!(
        "<details><summary>All {total} validation results</summary>{}</details>",
        validation_table(&all)
    ));
    h
}

/// Validation rows as a table: what was compared, the source, the band, the prediction.
fn validation_table(rows: &[&ValidationRow]) -> String {
    let mut h = String::from(
        "<table><tr><th class='l'>experiment and result</th><th class='l'>source</th><th>experimental</th><th>band</th><th>model</th><th>result</th></tr>",
    );
    for r in rows {
        let t = &r.target;
        let prec = if t.quantity == "idp_mpa" { 2 } else { 1 };
        h.push_str(&format!(
            "<tr><td class='l'>{}</td><td class='l' style='white-space:nowrap'>{}</td><td>{:.*}</td><td style='white-space:nowrap'>{:.*} to {:.*}</td><td>{}</td><td style='background:{}'>{}</td></tr>",
            esc(&t.describe()),
            esc(t.short_source()),
            prec,
            t.mean,
            prec,
            r.band[0],
            prec,
            r.band[1],
            r.predicted
                .map(|p| format!("{p:.prec$}"))
                .unwrap_or_else(|| "<span class='nc'>not converged</span>".into()),
            if r.pass { "#cdeccd" } else { "#f4b6b6" },
            if r.pass { "inside" } else { "outside" }
        ));
    }
    h.push_str("</table>");
    h
}

/// Escapes text for HTML (element content and single- or double-quoted attributes).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&#39;")
        .replace('"', "&quot;")
}
