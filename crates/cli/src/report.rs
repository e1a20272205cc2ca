//! `report.html`: one self-contained page with the twin's load-case results, per level, and
//! the moment-rotation curves as inline SVG (no scripts, no external files, so the page can
//! be mailed or archived as is).

use spinetwin_model::summary::ModelSummary;
use spinetwin_model::twin::{CaseResult, PosteriorContact, Twin};
use spinetwin_scenario::header::esc;

/// Moment-rotation curves of one case: one polyline per segment, main-plane rotation
/// against moment.
fn curve_svg(r: &CaseResult) -> String {
    let curves = r.moment_rotation();
    if curves.is_empty() {
        return String::new();
    }
    let series: Vec<&[(f64, f64)]> = curves.iter().map(|(_, p)| p.as_slice()).collect();
    let xmax = r.samples.iter().map(|s| s.moment_nm).fold(1.0, f64::max);
    let ymax = series
        .iter()
        .flat_map(|c| c.iter())
        .map(|p| p.1.abs())
        .fold(1.0, f64::max)
        .ceil();
    let (w, h, m) = (360.0, 220.0, 40.0);
    let px = |x: f64| m + x / xmax * (w - 1.5 * m);
    let py = |y: f64| h - m - y / ymax * (h - 1.6 * m);
    let colours = [
        "#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97",
    ];
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-size='11'>\
<line x1='{m}' y1='{y0}' x2='{x1}' y2='{y0}' stroke='#444'/>\
<line x1='{m}' y1='{y0}' x2='{m}' y2='{yt}' stroke='#444'/>\
<text x='{xl}' y='{yl}' text-anchor='middle'>moment (N m)</text>\
<text x='10' y='{yt}' >{ymax} deg</text><text x='{xr}' y='{yl2}'>{xmax}</text>",
        y0 = py(0.0),
        x1 = px(xmax),
        yt = py(ymax),
        xl = (w + m) / 2.0,
        yl = h - 8.0,
        xr = px(xmax) - 10.0,
        yl2 = py(0.0) + 14.0,
    );
    for (k, pts) in series.iter().enumerate() {
        let c = colours[k % colours.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        s.push_str(&format!(
            "<polyline fill='none' stroke='{c}' stroke-width='2' points='{}'/>",
            path.join(" ")
        ));
        s.push_str(&format!(
            "<text x='{}' y='{}' fill='{c}'>{}</text>",
            w - 60.0,
            20.0 + 13.0 * k as f64,
            curves[k].0
        ));
    }
    s.push_str("</svg>");
    s
}

/// The whole report page.
pub fn html(twin: &Twin, results: &[CaseResult]) -> String {
    let mut s = String::from(
        "<!doctype html><html><head><meta charset='utf-8'><title>spinetwin report</title>\
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}\
th{background:#eef}td:first-child{text-align:left}.bad{color:#b00;font-weight:bold}",
    );
    s.push_str(spinetwin_scenario::header::HEADER_CSS);
    s.push_str("</style></head><body>");
    s.push_str(
        "<h1>spinetwin: lumbar spine twin</h1><p>Units: degrees, MPa, N. Rotations are those of \
the upper vertebra relative to the lower one, in the lower one's anatomical frame \
(flexion +, left lateral bending +, left axial rotation +).</p>",
    );
    if twin.contact_count(PosteriorContact::BonyStop) > 0 {
        s.push_str(
            "<p>Bony stops: posterior bone on the arch below, in contact when the bones touch; \
they stiffen extension a lot.</p>",
        );
    }
    let cases: Vec<String> = results.iter().map(|r| r.case.name.clone()).collect();
    s.push_str(&spinetwin_scenario::header::model_header_html(
        &ModelSummary::of(twin),
        None,
        &cases,
    ));
    for r in results {
        s.push_str(&format!("<h2>{}</h2>", esc(&r.case.name)));
        if !r.converged {
            s.push_str(&format!(
                "<p class='bad'>Not converged: {}. No results are shown for this case.</p>",
                esc(&r.failure.clone().unwrap_or_default())
            ));
            continue;
        }
        s.push_str(&format!(
            "<p>{} Newton iterations, {:.1} s, {} equations.</p>",
            r.iterations, r.seconds, r.equations
        ));
        s.push_str(&curve_svg(r));
        if let Some(last) = r.last() {
            s.push_str("<table><tr><th>segment</th><th>flexion/extension (deg)</th><th>lateral bending (deg)</th><th>axial rotation (deg)</th><th>IDP (MPa)</th><th>facet L (N)</th><th>facet R (N)</th><th>disc height change (mm)</th></tr>");
            for g in &last.segments {
                let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or("-".into());
                s.push_str(&format!(
                    "<tr><td>{}-{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.3}</td><td>{}</td><td>{}</td><td>{:.3}</td></tr>",
                    g.upper.name(),
                    g.lower.name(),
                    g.rotation_deg[0],
                    g.rotation_deg[1],
                    g.rotation_deg[2],
                    g.idp_mpa,
                    f(g.facet_force_n[0]),
                    f(g.facet_force_n[1]),
                    g.disc_height_change_mm
                ));
            }
            s.push_str("</table>");
        }
    }
    s.push_str("</body></html>\n");
    s
}
