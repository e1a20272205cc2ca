//! Atomic output: write to a temporary sibling, then rename into place.
//!
//! A crash, an error or Ctrl-C in the middle of writing leaves the destination untouched
//! (either absent or the previous complete version), never half-written.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// An output that could not be written; names the path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write output ({source}); check that the folder exists and is writable and that the disk is not full")]
pub struct WriteError {
    /// The destination that could not be written.
    pub path: PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: io::Error,
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes a file atomically: `fill` writes into a temporary file in the same folder, which
/// is then renamed over `path`. Parent folders are created as needed.
pub fn write_file<F>(path: &Path, fill: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let err = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(err)?;
    let tmp = tempfile::Builder::new()
        .prefix(".spinetwin-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(err)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w).map_err(err)?;
        w.flush().map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    set_normal_permissions(tmp.path(), false).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Temporary files and folders are created private (0600/0700); outputs get the usual
/// 0644/0755 so other accounts (a viewer, a web server) can read them.
fn set_normal_permissions(path: &Path, is_dir: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if is_dir { 0o755 } else { 0o644 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, is_dir);
    Ok(())
}

/// Writes bytes to a file atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_file(path, |w| w.write_all(bytes))
}

/// Fills a whole folder atomically: `fill` receives a fresh temporary folder beside `dir`;
/// on success the temporary folder replaces `dir` (an existing `dir` is removed first),
/// on failure it is deleted and `dir` is left as it was.
pub fn write_dir<F, E>(dir: &Path, fill: F) -> Result<(), E>
where
    F: FnOnce(&Path) -> Result<(), E>,
    E: From<WriteError>,
{
    let err = |source| WriteError {
        path: dir.to_path_buf(),
        source,
    };
    let parent = parent_of(dir);
    fs::create_dir_all(parent).map_err(err)?;
    let tmp = tempfile::Builder::new()
        .prefix(".spinetwin-")
        .suffix(".part")
        .tempdir_in(parent)
        .map_err(err)?;
    fill(tmp.path())?;
    set_normal_permissions(tmp.path(), true).map_err(err)?;
    if dir.exists() && !dir.is_dir() {
        return Err(err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file (not a folder) is in the way",
        ))
        .into());
    }
    let kept = tmp.keep();
    // Move the previous folder aside (not delete it) until the new one is in place: a failed
    // rename puts it back, and even a crash in between leaves both complete folders on disk
    // (the old one as .spinetwin-old-*), never a half-written one.
    let aside = if dir.exists() {
        // A fresh, uniquely named empty folder: renaming a folder onto an empty one replaces it.
        let aside = match tempfile::Builder::new()
            .prefix(".spinetwin-old-")
            .tempdir_in(parent)
        {
            Ok(t) => t.keep(),
            Err(e) => {
                let _ = fs::remove_dir_all(&kept);
                return Err(err(e).into());
            }
        };
        if let Err(e) = fs::rename(dir, &aside) {
            let _ = fs::remove_dir(&aside);
            let _ = fs::remove_dir_all(&kept);
            return Err(err(e).into());
        }
        Some(aside)
    } else {
        None
    };
    if let Err(e) = fs::rename(&kept, dir) {
        let _ = fs::remove_dir_all(&kept);
        if let Some(a) = &aside {
            let _ = fs::rename(a, dir);
        }
        return Err(err(e).into());
    }
    if let Some(a) = aside {
        // The new folder is in place; failing to clean up the old one is not an error.
        let _ = fs::remove_dir_all(a);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_previous_content_and_no_temp_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.txt");
        write_bytes(&p, b"first").unwrap();
        let r = write_file(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"first");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn outputs_are_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f.txt");
        write_bytes(&f, b"x").unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let out = d.path().join("dir");
        write_dir::<_, WriteError>(&out, |_| Ok(())).unwrap();
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    #[test]
    fn dir_is_replaced_whole_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("series");
        write_dir::<_, WriteError>(&out, |t| {
            fs::write(t.join("a"), b"1").map_err(|source| WriteError {
                path: t.into(),
                source,
            })
        })
        .unwrap();
        let r: Result<(), WriteError> = write_dir(&out, |t| {
            fs::write(t.join("b"), b"2").unwrap();
            Err(WriteError {
                path: t.into(),
                source: io::Error::other("fail"),
            })
        });
        assert!(r.is_err());
        assert!(out.join("a").exists() && !out.join("b").exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        // A successful rewrite replaces the folder whole and leaves nothing beside it.
        write_dir::<_, WriteError>(&out, |t| {
            fs::write(t.join("c"), b"3").map_err(|source| WriteError {
                path: t.into(),
                source,
            })
        })
        .unwrap();
        assert!(out.join("c").exists() && !out.join("a").exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
