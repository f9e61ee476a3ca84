//! Small file-system helpers shared by telemetry and install.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The infix of the temporary files [`write_atomically`] writes beside their target:
/// `<file>.codelens-tmp-<pid>`.
pub const TMP_INFIX: &str = ".codelens-tmp-";

/// The temporary file beside `path` that this process writes before renaming.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(format!("{TMP_INFIX}{}", std::process::id()));
    PathBuf::from(name)
}

/// Replaces `path` with `bytes` in one rename, so a concurrent reader (an agent, another
/// codelens process) sees the old file or the new one, never half of one.
///
/// Permissions: an existing file keeps its own (`~/.claude.json` may hold tokens and be
/// private); the temporary file is created 0600 and only then given them, so the new
/// content is never readable by more people than the old. A new file gets `new_mode`
/// (minus the umask) on Unix.
pub fn write_atomically(path: &Path, bytes: &[u8], new_mode: u32) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let existing = std::fs::metadata(path).ok().map(|m| m.permissions());
    // A leftover of a process that had this pid before is stale: ours to replace.
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut file = create_new(&tmp, if existing.is_some() { 0o600 } else { new_mode })?;
        file.write_all(bytes)?;
        if let Some(permissions) = existing {
            file.set_permissions(permissions)?;
        }
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Copies `from`'s `bytes` to `backup` unless `backup` already exists (returns whether
/// it wrote). The copy is created 0600, then given `from`'s permissions: a private
/// file's backup is never readable by anyone the original was not.
pub fn write_backup_once(from: &Path, backup: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let mut file = match create_new(backup, 0o600) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(error) => return Err(error),
    };
    let result = file.write_all(bytes).and_then(|()| {
        let permissions = std::fs::metadata(from)?.permissions();
        file.set_permissions(permissions)
    });
    if let Err(error) = result {
        drop(file);
        let _ = std::fs::remove_file(backup);
        return Err(error);
    }
    Ok(true)
}

fn create_new(path: &Path, mode: u32) -> std::io::Result<File> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}
