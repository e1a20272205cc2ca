//! Output folders: refuse to clobber a user's non-empty folder unless asked, and fill the
//! folder atomically so that a failed run leaves nothing half-written.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// Refuses an output folder that contains an input or lies inside one: replacing it would
/// destroy the input.
pub fn check_not_overlapping(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    // The output may not exist yet: resolve its nearest existing ancestor.
    let resolve = |p: &Path| -> PathBuf {
        let mut base = p.to_path_buf();
        let mut rest = Vec::new();
        while !base.exists() {
            match (base.file_name().map(|n| n.to_os_string()), base.parent()) {
                (Some(n), Some(parent)) => {
                    rest.push(n);
                    base = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut r = std::fs::canonicalize(&base).unwrap_or(base);
        r.extend(rest.iter().rev());
        r
    };
    let o = resolve(out);
    for i in inputs {
        let i2 = resolve(i);
        if i2.starts_with(&o) || o.starts_with(&i2) {
            bail!(
                "{}: the output folder overlaps the input {}; choose an output folder outside the input",
                out.display(),
                i.display()
            );
        }
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
    fn outputs_may_not_contain_or_sit_inside_inputs() {
        let d = tempfile::tempdir().unwrap();
        let input = d.path().join("ph/dicom");
        std::fs::create_dir_all(&input).unwrap();
        let inputs = [input.clone()];
        assert!(check_not_overlapping(&d.path().join("ph"), &inputs).is_err());
        assert!(check_not_overlapping(&input.join("out"), &inputs).is_err());
        assert!(check_not_overlapping(&d.path().join("ph/seg"), &inputs).is_ok());
        assert!(check_not_overlapping(&d.path().join("new/seg"), &inputs).is_ok());
    }

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
