//! `spinetwin deidentify`: a de-identified copy of DICOM data.

use crate::output::check_writable;
use anyhow::{bail, Context, Result};
use spinetwin_imaging::deid::{self, DeidOptions};
use std::path::{Path, PathBuf};

/// Arguments of `spinetwin deidentify`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Write a de-identified copy of a DICOM file or folder following the \
DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile: identifying attributes \
removed, emptied or replaced, private tags removed, UIDs replaced consistently, patient name \
and ID replaced by a stable pseudonym. Files flagged with burned-in annotation are refused. \
The pseudonym and UID mapping are keyed: the same key gives the same pseudonym for the same \
patient. The key comes from --key-file, else SPINETWIN_DEID_KEY, else a per-user key file \
created on first use (~/.config/spinetwin/deid.key); keep it secret."
)]
pub struct Args {
    /// A DICOM file or a folder (searched recursively).
    pub input: PathBuf,
    /// Output folder (new or empty unless --force). File names carry no patient data.
    pub output: PathBuf,
    /// File holding the secret key for pseudonyms and UIDs.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Also process images flagged as having burned-in annotation (text in the pixels that
    /// this tool does not remove). Only for images you have checked by eye.
    #[arg(long)]
    pub allow_burned_in: bool,
    /// Replace OUTPUT if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
}

fn read_key(path: &Path) -> Result<Vec<u8>> {
    let k = std::fs::read(path).with_context(|| {
        format!(
            "{}: cannot read the de-identification key file; check the path or omit --key-file",
            path.display()
        )
    })?;
    if k.len() < 16 {
        bail!(
            "{}: key is only {} bytes; use at least 16 random bytes",
            path.display(),
            k.len()
        );
    }
    Ok(k)
}

/// Creates the key file readable by its owner only (0600), never replacing an existing one:
/// whoever holds the key can recompute pseudonyms from guessed patient IDs.
fn write_private_key(path: &Path, key: &[u8]) -> Result<()> {
    use std::io::Write;
    let ctx = || {
        format!(
            "{}: cannot create the de-identification key file",
            path.display()
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(ctx)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(ctx)?;
    f.write_all(key)
        .and_then(|_| f.sync_all())
        .with_context(ctx)?;
    Ok(())
}

/// The key: --key-file, SPINETWIN_DEID_KEY, or the per-user key file (created if absent).
fn resolve_key(arg: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(p) = arg {
        return read_key(p);
    }
    if let Some(k) = std::env::var_os("SPINETWIN_DEID_KEY") {
        let k = k.to_string_lossy().into_owned().into_bytes();
        if k.len() < 16 {
            bail!("SPINETWIN_DEID_KEY is shorter than 16 characters; use a longer secret");
        }
        return Ok(k);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("no key given and HOME is not set; pass --key-file")?;
    let path = home.join(".config/spinetwin/deid.key");
    if path.exists() {
        return read_key(&path);
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow::anyhow!("cannot get random bytes for a new key: {e}"))?;
    write_private_key(&path, &key)?;
    eprintln!(
        "note: created a new de-identification key at {}; keep it to get the same pseudonyms next time",
        path.display()
    );
    Ok(key)
}

/// Runs `spinetwin deidentify`.
pub fn run(args: Args) -> Result<()> {
    if !args.input.exists() {
        bail!(
            "{}: input does not exist; give a DICOM file or folder",
            args.input.display()
        );
    }
    check_writable(&args.output, args.force)?;
    let key = resolve_key(args.key_file.as_deref())?;
    let report = deid::deidentify(
        &args.input,
        &args.output,
        &DeidOptions {
            key,
            allow_burned_in: args.allow_burned_in,
        },
    )?;
    println!(
        "{} file(s) de-identified into {} ({} patient pseudonym(s))",
        report.files_written,
        args.output.display(),
        report.pseudonyms
    );
    if !report.files_skipped.is_empty() {
        println!("{} file(s) skipped:", report.files_skipped.len());
        for (p, why) in &report.files_skipped {
            println!("  {}: {why}", p.display());
        }
    }
    for (p, w) in &report.warnings {
        println!("warning: {}: {w}", p.display());
    }
    if report.files_written == 0 {
        bail!(
            "{}: no file could be de-identified (see the skipped files above)",
            args.input.display()
        );
    }
    Ok(())
}
