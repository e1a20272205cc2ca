//! Progress bars for long work, drawn on stderr with indicatif.
//!
//! Bars hide themselves when stderr is not a terminal (CI, pipes, tests) or when
//! `SPINETWIN_QUIET` is set, so library code can always create them.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

fn visible() -> bool {
    std::env::var_os("SPINETWIN_QUIET").is_none() && std::io::stderr().is_terminal()
}

/// A bar counting `len` steps of work described by `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if visible() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    pb.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A spinner for work of unknown length.
pub fn spinner(what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        None,
        if visible() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("static template"),
    );
    pb.set_message(what.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}
