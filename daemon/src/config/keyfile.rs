//! Reading a key from a file, as `wg genkey > file` writes it.

use super::error::ProblemKind;
use protocol::keys::KeyError;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::str::FromStr;
use zeroize::Zeroizing;

/// A key file is 44 base64 characters and a newline; anything much longer is not a key file.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// A key read from a file, and the file's permission bits.
pub(super) struct KeyFromFile<K> {
    pub key: K,
    pub mode: u32,
}

impl<K> KeyFromFile<K> {
    /// Whether anyone but the owner may read (or write) the file.
    pub fn too_open(&self) -> bool {
        self.mode & 0o077 != 0
    }
}

/// Reads the key in `path`, ignoring surrounding whitespace. The buffer is wiped afterwards.
pub(super) fn read<K: FromStr<Err = KeyError>>(path: &Path) -> Result<KeyFromFile<K>, ProblemKind> {
    let unreadable = |error: io::Error| ProblemKind::KeyFileUnreadable {
        path: path.to_path_buf(),
        error,
    };
    let invalid = |error: KeyError| ProblemKind::KeyFileInvalid {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(unreadable)?;
    // Ask the open file, not the path, so the mode is that of the bytes we read.
    let mode = file.metadata().map_err(unreadable)?.permissions().mode() & 0o7777;
    let mut buf = Zeroizing::new(Vec::with_capacity(64));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(unreadable)?;
    if buf.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(ProblemKind::KeyFileTooLarge {
            path: path.to_path_buf(),
            limit: MAX_KEY_FILE_LEN,
        });
    }
    let text = std::str::from_utf8(&buf).map_err(|_| invalid(KeyError::BadBase64))?;
    let key = text.trim().parse::<K>().map_err(invalid)?;
    Ok(KeyFromFile { key, mode })
}
