//! Writing the configuration file back (`--save`): atomically, and owner-only when it holds a
//! secret.

use std::path::Path;

/// Writes `data` to `path` through a temporary file and a rename. The file keeps its mode,
/// except that one holding a `secret` is made 0600 (owner only) whatever its mode was. On any
/// failure (a full disk, say) the temporary file is removed and `path` is untouched.
pub fn write_atomically(path: &Path, data: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let old_mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
    let mode = match old_mode {
        _ if secret => 0o600,
        Ok(mode) => mode,
        Err(_) => 0o600,
    };
    let written = (|| {
        // Created with no access for others from the start (not widened by the umask later).
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .or_else(|e| {
                // A temporary file left by a killed run of this same PID: replace it.
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    std::fs::remove_file(&tmp)?;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&tmp)
                } else {
                    Err(e)
                }
            })?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
