//! Files of one index generation beside the tantivy index (`catalog-<g>.bin`,
//! `vectors-<g>.bin`): their names, a durable write, and removal of other generations' files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Prefixes of the per-generation files.
pub(crate) const CATALOG: &str = "catalog-";
pub(crate) const VECTORS: &str = "vectors-";

/// `<dir>/<prefix><generation>.bin`.
pub(crate) fn generation_file(dir: &Path, prefix: &str, generation: u64) -> PathBuf {
    dir.join(format!("{prefix}{generation:06}.bin"))
}

/// Writes `bytes` to `path` durably: temp file, fsync, rename, fsync of `dir`.
pub(crate) fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("bin.tmp");
    let io = |err: std::io::Error| Error::io(format!("writing {}", tmp.display()), err);
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(|err| Error::io(format!("renaming {}", tmp.display()), err))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|err| Error::io(format!("syncing {}", dir.display()), err))
}

/// Deletes the per-generation files of every generation but `keep` (left behind by earlier
/// commits, or by a crash between writing them and committing).
pub(crate) fn remove_stale(dir: &Path, keep: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let kept = [CATALOG, VECTORS].map(|prefix| generation_file(dir, prefix, keep));
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(CATALOG) || name.starts_with(VECTORS);
        if ours && !kept.contains(&entry.path()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
