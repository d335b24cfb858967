//! Keeping a path inside a directory: for checks requested over the control socket, where a
//! client must not make the daemon (running as root) read files elsewhere.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The path leads outside the directory (by its text, or through a symbolic link).
    #[error("{path} is outside the configuration directory {dir}")]
    Outside {
        /// The path as given.
        path: PathBuf,
        /// The directory.
        dir: PathBuf,
    },
    /// The directory itself cannot be resolved.
    #[error("cannot resolve the configuration directory {dir}: {error}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The path is inside the directory by its text but cannot be resolved (it does not
    /// exist, say).
    #[error("cannot read {path}: {error}")]
    Unresolvable {
        /// The path, joined to the directory.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

/// `path` with symbolic links resolved, if it lies inside `dir`; a relative `path` is taken
/// from `dir`.
///
/// A path that leads elsewhere by its text (a `..` component, another absolute prefix) is
/// refused before the file system is asked anything, so the answer tells nothing about files
/// outside `dir`. One that is inside by its text is then resolved, and refused if a symbolic
/// link takes it out.
pub fn within(dir: &Path, path: &Path) -> Result<PathBuf, ConfineError> {
    let outside = || ConfineError::Outside {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
    };
    let real_dir = dir.canonicalize().map_err(|error| ConfineError::Dir {
        dir: dir.to_path_buf(),
        error,
    })?;
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(outside());
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        real_dir.join(path)
    };
    let inside_by_text =
        joined.starts_with(&real_dir) || (dir.is_absolute() && joined.starts_with(dir));
    if !inside_by_text || joined == real_dir || joined == dir {
        return Err(outside());
    }
    let real = joined
        .canonicalize()
        .map_err(|error| ConfineError::Unresolvable {
            path: joined.clone(),
            error,
        })?;
    if !real.starts_with(&real_dir) || real == real_dir {
        return Err(outside());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn inside_is_accepted_and_everything_else_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("conf");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.yaml"), "x").unwrap();
        std::fs::write(dir.join("sub/b.yaml"), "x").unwrap();
        std::fs::write(root.path().join("secret"), "x").unwrap();
        symlink(root.path().join("secret"), dir.join("escape")).unwrap();
        symlink(dir.join("a.yaml"), dir.join("alias.yaml")).unwrap();
        let real_dir = dir.canonicalize().unwrap();

        let ok = |p: &Path| within(&dir, p).unwrap();
        assert_eq!(ok(Path::new("a.yaml")), real_dir.join("a.yaml"));
        assert_eq!(ok(&dir.join("sub/b.yaml")), real_dir.join("sub/b.yaml"));
        assert_eq!(ok(Path::new("./sub/b.yaml")), real_dir.join("sub/b.yaml"));
        assert_eq!(ok(Path::new("alias.yaml")), real_dir.join("a.yaml"));

        let outside = |p: &Path| matches!(within(&dir, p), Err(ConfineError::Outside { .. }));
        assert!(outside(Path::new("/etc/shadow")));
        assert!(outside(&root.path().join("secret")));
        assert!(outside(Path::new("../secret")));
        assert!(outside(Path::new("sub/../../secret")));
        assert!(outside(&dir.join("../secret")));
        assert!(
            outside(Path::new("escape")),
            "a symbolic link out of the directory"
        );
        assert!(outside(Path::new("")));
        assert!(outside(&dir));
        // A missing file outside is refused as outside, not reported as missing.
        assert!(outside(Path::new("/nonexistent/file")));
        assert!(matches!(
            within(&dir, Path::new("missing.yaml")),
            Err(ConfineError::Unresolvable { .. })
        ));
        let e = within(&dir, Path::new("/etc/shadow"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the configuration directory"), "{e}");
        assert!(matches!(
            within(&root.path().join("none"), Path::new("a.yaml")),
            Err(ConfineError::Dir { .. })
        ));
    }
}
