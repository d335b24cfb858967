//! `config.check`: validating a configuration for a control client without reading, as root,
//! any file outside the daemon's configuration directory (issue 15).

use crate::config::confine::{self, ConfineError};
use crate::config::{self, Format, KeyFiles};
use protocol::rpc::{self, ConfigCheckParams, ConfigCheckResult, RpcError};
use std::path::Path;

/// Checks the file or text `p` names. `config_file` is the daemon's `--config` file (`None`
/// without one); its directory is the only place files are read from. A request that names
/// a file elsewhere is refused (`-32000`) without looking at that file.
pub fn config_check(
    config_file: Option<&Path>,
    p: ConfigCheckParams,
) -> Result<ConfigCheckResult, RpcError> {
    let dir = config_file.map(|f| match f.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    });
    let loaded = match (p.path, p.content) {
        (Some(path), None) => {
            if p.name.is_some() {
                return Err(invalid("`name` goes with `content`, not with `path`"));
            }
            let Some(dir) = dir else {
                return Err(RpcError::new(
                    rpc::REFUSED,
                    "config.check: path: this daemon was started without a configuration \
                     file, so it reads no file for a client; send the text as `content` \
                     (`vpnctl check` does)",
                ));
            };
            match confine::within(dir, Path::new(&path)) {
                Ok(real) => config::load(&real),
                Err(ConfineError::Unresolvable { path, error }) => {
                    return Ok(invalid_result(vec![format!("{}: {error}", path.display())]))
                }
                Err(e) => {
                    return Err(RpcError::new(
                        rpc::REFUSED,
                        format!(
                            "config.check: path: {e}; the daemon reads no file elsewhere for a \
                             client: send the text as `content` (`vpnctl check` does)"
                        ),
                    ))
                }
            }
        }
        (None, Some(text)) => {
            let name = p.name.unwrap_or_else(|| "content".to_string());
            let format = Format::from_path(Path::new(&name));
            let key_files = match dir {
                Some(d) => KeyFiles::Within(d),
                None => KeyFiles::None,
            };
            let base = dir.unwrap_or(Path::new("/"));
            config::parse_untrusted(&text, format, &name, base, key_files)
        }
        _ => {
            return Err(invalid(
                "give either `path` (a file in the daemon's configuration directory) or \
                 `content` (the configuration's text)",
            ))
        }
    };
    Ok(match loaded {
        Ok(cfg) => ConfigCheckResult {
            valid: true,
            errors: vec![],
            warnings: cfg.warnings,
        },
        Err(e) => invalid_result(e.to_string().lines().map(str::to_string).collect()),
    })
}

fn invalid(message: &str) -> RpcError {
    RpcError::new(
        rpc::INVALID_PARAMS,
        format!("invalid params: config.check: {message}"),
    )
}

fn invalid_result(errors: Vec<String>) -> ConfigCheckResult {
    ConfigCheckResult {
        valid: false,
        errors,
        warnings: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// The wg(8) example private key.
    const PRIV: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    fn by_path(path: &Path) -> ConfigCheckParams {
        ConfigCheckParams {
            path: Some(path.to_string_lossy().into_owned()),
            ..Default::default()
        }
    }

    fn by_content(text: &str) -> ConfigCheckParams {
        ConfigCheckParams {
            content: Some(text.to_string()),
            name: Some("draft.yaml".into()),
            ..Default::default()
        }
    }

    fn key_file_config(key: &Path) -> String {
        format!(
            "interface:\n  name: vpn0\n  private_key_file: {}\n",
            key.display()
        )
    }

    #[test]
    fn reads_files_only_in_the_configuration_directory() {
        let root = tempfile::tempdir().unwrap();
        let conf = root.path().join("etc");
        fs::create_dir(&conf).unwrap();
        let own = write(&conf, "vpn0.yaml", "");
        let inline = format!("interface:\n  name: vpn0\n  private_key: {PRIV}\n");
        let inside = write(&conf, "other.yaml", &inline);
        let outside = write(root.path(), "secret.yaml", "root:$6$hash:19000::::::\n");

        // Inside, by absolute or relative path: checked.
        let r = config_check(Some(&own), by_path(&inside)).unwrap();
        assert!(r.valid, "{r:?}");
        let r = config_check(Some(&own), by_path(Path::new("other.yaml"))).unwrap();
        assert!(r.valid, "{r:?}");
        // A missing file inside is invalid, not an error of the call.
        let r = config_check(Some(&own), by_path(Path::new("missing.yaml"))).unwrap();
        assert!(!r.valid && r.errors[0].contains("missing.yaml"), "{r:?}");

        // Outside, by path, `..` or a link: refused, and nothing of the file is shown.
        std::os::unix::fs::symlink(&outside, conf.join("link.yaml")).unwrap();
        for p in [
            outside.clone(),
            PathBuf::from("../secret.yaml"),
            PathBuf::from("link.yaml"),
            PathBuf::from("/etc/shadow"),
        ] {
            let e = config_check(Some(&own), by_path(&p)).unwrap_err();
            assert_eq!(e.code, rpc::REFUSED, "{p:?}: {e:?}");
            assert!(
                e.message.contains("outside the configuration directory"),
                "{e:?}"
            );
            assert!(e.message.contains("content"), "says what to do: {e:?}");
            assert!(!e.message.contains("root:"), "{e:?}");
        }

        // Without a configuration file there is no directory: no path at all.
        let e = config_check(None, by_path(&inside)).unwrap_err();
        assert_eq!(e.code, rpc::REFUSED);
        assert!(e.message.contains("without a configuration file"), "{e:?}");
    }

    #[test]
    fn content_is_checked_with_key_files_from_the_directory_only() {
        let root = tempfile::tempdir().unwrap();
        let conf = root.path().join("etc");
        fs::create_dir(&conf).unwrap();
        let own = write(&conf, "vpn0.yaml", "");
        let key_inside = write(&conf, "vpn0.key", &format!("{PRIV}\n"));
        let key_outside = write(root.path(), "other.key", &format!("{PRIV}\n"));

        let inline = format!("interface:\n  name: vpn0\n  private_key: {PRIV}\n");
        let r = config_check(Some(&own), by_content(&inline)).unwrap();
        assert!(r.valid, "{r:?}");
        let r = config_check(Some(&own), by_content(&key_file_config(&key_inside))).unwrap();
        assert!(r.valid, "{r:?}");
        // Relative key files are taken from the configuration directory.
        let r = config_check(
            Some(&own),
            by_content(&key_file_config(Path::new("vpn0.key"))),
        );
        assert!(r.unwrap().valid);

        let r = config_check(Some(&own), by_content(&key_file_config(&key_outside))).unwrap();
        assert!(!r.valid);
        assert!(r.errors[0].starts_with("draft.yaml: interface.private_key_file: key file "));
        assert!(r.errors[0].contains("is not read"), "{r:?}");
        assert!(
            r.errors[0].contains("outside the configuration directory"),
            "{r:?}"
        );
        let r = config_check(
            Some(&own),
            by_content(&key_file_config(Path::new("/etc/shadow"))),
        );
        assert!(r.unwrap().errors[0].contains("is not read"));
        let r = config_check(None, by_content(&key_file_config(&key_inside))).unwrap();
        assert!(
            r.errors[0].contains("without a configuration file"),
            "{r:?}"
        );
        // Without a directory, inline keys still check.
        assert!(config_check(None, by_content(&inline)).unwrap().valid);

        // A .toml name selects TOML; errors name the content.
        let toml = ConfigCheckParams {
            content: Some(format!(
                "[interface]\nname = \"vpn0\"\nprivate_key = \"{PRIV}\"\n"
            )),
            name: Some("draft.toml".into()),
            ..Default::default()
        };
        assert!(config_check(Some(&own), toml).unwrap().valid);
        let bad = ConfigCheckParams {
            content: Some("interface: 5\n".into()),
            ..Default::default()
        };
        let r = config_check(Some(&own), bad).unwrap();
        assert!(r.errors[0].starts_with("content: "), "{r:?}");
    }

    #[test]
    fn path_or_content_exactly() {
        let own = Path::new("/etc/vpnd/vpn0.yaml");
        let neither = ConfigCheckParams::default();
        assert_eq!(
            config_check(Some(own), neither).unwrap_err().code,
            rpc::INVALID_PARAMS
        );
        let both = ConfigCheckParams {
            path: Some("a.yaml".into()),
            content: Some(String::new()),
            name: None,
        };
        let e = config_check(Some(own), both).unwrap_err();
        assert_eq!(e.code, rpc::INVALID_PARAMS);
        assert!(e.message.contains("either `path`"), "{e:?}");
        let named_path = ConfigCheckParams {
            path: Some("a.yaml".into()),
            name: Some("b.yaml".into()),
            ..Default::default()
        };
        assert_eq!(
            config_check(Some(own), named_path).unwrap_err().code,
            rpc::INVALID_PARAMS
        );
    }
}
