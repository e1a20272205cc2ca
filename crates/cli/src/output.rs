//! Output folders: refuse to clobber a user's non-empty folder unless asked, and fill the
//! folder atomically so that a failed run leaves nothing half-written.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Checks that `dir` may be (re)written: absent, an empty folder, or `force` given.
pub fn check_writable(dir: &Path, force: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        bail!(
            "{}: exists and is not a folder; choose another output path",
            dir.display()
        );
    }
    let non_empty = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list the output folder", dir.display()))?
        .next()
        .is_some();
    if non_empty && !force {
        bail!(
            "{}: output folder exists and is not empty; choose a new folder or pass --force to replace it",
            dir.display()
        );
    }
    Ok(())
}

/// Creates `dir` atomically: `fill` writes into a temporary sibling that replaces `dir` on
/// success and is removed on failure.
pub fn write_dir_atomically<F>(dir: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    spinetwin_core::atomic::write_dir::<_, anyhow::Error>(dir, fill)
}

/// Serialises `value` as pretty JSON into `path` (atomically).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).context("serialising JSON")?;
    spinetwin_core::atomic::write_bytes(path, &text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_empty_folders_need_force() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_writable(&d.path().join("new"), false).is_ok());
        assert!(
            check_writable(d.path(), false).is_ok(),
            "empty folder is fine"
        );
        std::fs::write(d.path().join("x"), b"1").unwrap();
        let e = check_writable(d.path(), false).unwrap_err().to_string();
        assert!(e.contains("--force"), "{e}");
        assert!(check_writable(d.path(), true).is_ok());
        assert!(check_writable(&d.path().join("x"), true).is_err());
    }
}
