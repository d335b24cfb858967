//! Reading the wg-quick file and writing the YAML. The output holds the private key, so it is
//! created with mode 0600 whatever the umask, and an existing file is never overwritten unless
//! asked (`--force`), then replaced atomically so a failure leaves the old one whole.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest input read: vpnd's own limit for a configuration file.
pub const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// Why the input could not be read or the output written.
#[derive(Debug, thiserror::Error)]
pub enum IoProblem {
    /// Reading failed.
    #[error("cannot read: {0}")]
    Read(io::Error),
    /// The input is larger than [`MAX_INPUT`].
    #[error("larger than 16 MiB: not a WireGuard configuration")]
    TooLarge,
    /// The input is not UTF-8.
    #[error("not a text file (not UTF-8)")]
    NotText,
    /// The output exists and `--force` was not given.
    #[error("already exists; give --force to replace it")]
    Exists,
    /// Writing failed (nothing is left behind).
    #[error("cannot write: {0}")]
    Write(io::Error),
}

/// Reads `path` (`-` is stdin) as text, at most [`MAX_INPUT`] bytes.
pub fn read_input(path: &Path) -> Result<Zeroizing<String>, IoProblem> {
    let mut buf = Zeroizing::new(Vec::new());
    let limit = MAX_INPUT + 1;
    if path == Path::new("-") {
        io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(IoProblem::Read)?;
    } else {
        fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut buf))
            .map_err(IoProblem::Read)?;
    }
    if buf.len() as u64 > MAX_INPUT {
        return Err(IoProblem::TooLarge);
    }
    let text = std::str::from_utf8(&buf).map_err(|_| IoProblem::NotText)?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Writes `contents` to a new file `path` with mode 0600; with `force` an existing file is
/// replaced (through a temporary file in the same folder and a rename).
pub fn write_output(path: &Path, contents: &[u8], force: bool) -> Result<(), IoProblem> {
    if !force {
        return write_new(path, contents).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => IoProblem::Exists,
            _ => IoProblem::Write(e),
        });
    }
    let tmp = temporary_name(path);
    write_new(&tmp, contents).map_err(IoProblem::Write)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        IoProblem::Write(e)
    })
}

/// Creates `path` (which must not exist) with mode 0600 and writes `contents`; on failure the
/// file is removed.
fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = fs::remove_file(path);
    }
    written
}

/// `.NAME.tmp-PID` next to `path`.
fn temporary_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_0600_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("vpn0.yaml");
        write_output(&out, b"one\n", false).unwrap();
        let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_output(&out, b"two\n", false),
            Err(IoProblem::Exists)
        ));
        assert_eq!(fs::read_to_string(&out).unwrap(), "one\n");

        fs::set_permissions(&out, fs::Permissions::from_mode(0o644)).unwrap();
        write_output(&out, b"two\n", true).unwrap();
        assert_eq!(fs::read_to_string(&out).unwrap(), "two\n");
        let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a replaced file holds a key too");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/vpn0.yaml");
        assert!(matches!(
            write_output(&missing, b"x", true),
            Err(IoProblem::Write(_))
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn reads_text_only() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(read_input(&bin), Err(IoProblem::NotText)));
        assert!(matches!(
            read_input(&dir.path().join("missing")),
            Err(IoProblem::Read(_))
        ));
    }
}
