//! Shared by the model's integration tests.

use spinetwin_model::twin::{Fidelity, TwinFile, TwinParams, TWIN_SCHEMA_VERSION};

/// The twin file of a phantom built as `spinetwin build` builds one from a CT: the
/// phantom's CT segmented automatically, its landmarks found, the twin given `params`.
pub fn phantom_twin_file(
    spec: &spinetwin_phantom::PhantomSpec,
    source: &str,
    params: TwinParams,
) -> TwinFile {
    let ph = spinetwin_phantom::generate(spec).expect("phantom");
    let seg = spinetwin_segment::segment(&ph.ct, &Default::default()).expect("segmentation");
    let landmarks =
        spinetwin_segment::landmarks::landmarks(&ph.ct, &seg.labels).expect("landmarks");
    TwinFile {
        schema_version: TWIN_SCHEMA_VERSION,
        fidelity: Fidelity::Hybrid,
        source: source.into(),
        pseudonym: String::new(),
        params,
        landmarks,
    }
}
