//! `genkey`, `pubkey` and `genpsk`: WireGuard keys in base64, compatible with `wg`.
//!
//! Randomness comes from the kernel through `getrandom(2)`, as in the daemon: unlike reading
//! `/dev/urandom`, it blocks until the entropy pool is initialised, so a key made early at
//! boot (first-boot provisioning) is not predictable. Buffers that held secrets are zeroized.

use protocol::keys::{KeyError, PresharedKey, PrivateKey, KEY_LEN};
use std::io::{self, Read};
use zeroize::Zeroize;

/// Most bytes `pubkey` reads from its input; a key with its newline is 45.
pub const MAX_KEY_INPUT: u64 = 4096;

/// Why a key command failed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The OS gave no random bytes.
    #[error("cannot read random bytes from the kernel: {0}")]
    Random(getrandom::Error),
    /// The input could not be read.
    #[error("cannot read the private key from stdin: {0}")]
    Input(io::Error),
    /// The input is not a base64 private key.
    #[error("invalid private key on stdin: {0}")]
    BadKey(KeyError),
}

/// 32 random bytes from the kernel.
pub fn random_bytes() -> Result<[u8; KEY_LEN], KeysError> {
    let mut out = [0u8; KEY_LEN];
    getrandom::fill(&mut out).map_err(KeysError::Random)?;
    Ok(out)
}

/// A new private key, clamped as `wg genkey` does, in base64.
pub fn genkey() -> Result<String, KeysError> {
    Ok(PrivateKey::from_bytes(random_bytes()?).to_base64())
}

/// The base64 public key of the base64 private key in `input` (surrounding whitespace is
/// ignored), as `wg pubkey` computes it.
pub fn pubkey(input: &str) -> Result<String, KeysError> {
    let key: PrivateKey = input.parse().map_err(KeysError::BadKey)?;
    Ok(key.public_key().to_base64())
}

/// Reads a private key from `r` (at most [`MAX_KEY_INPUT`] bytes) and returns its public key.
pub fn pubkey_from_reader(r: impl Read) -> Result<String, KeysError> {
    let mut buf = Vec::new();
    let res = r.take(MAX_KEY_INPUT).read_to_end(&mut buf);
    let out = match res {
        Err(e) => Err(KeysError::Input(e)),
        Ok(_) => match std::str::from_utf8(&buf) {
            Ok(s) => pubkey(s),
            Err(_) => Err(KeysError::BadKey(KeyError::BadBase64)),
        },
    };
    buf.zeroize();
    out
}

/// A new preshared key in base64.
pub fn genpsk() -> Result<String, KeysError> {
    Ok(PresharedKey(random_bytes()?).to_base64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// `wg pubkey` of `key`, or `None` when `wg` is not installed.
    fn wg_pubkey(key: &str) -> Option<String> {
        let mut child = Command::new("wg")
            .arg("pubkey")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{key}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "wg pubkey failed on {key}");
        Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    fn wg_genkey() -> Option<String> {
        let out = Command::new("wg").arg("genkey").output().ok()?;
        Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    #[test]
    fn genkey_is_clamped_and_random() {
        let a = genkey().unwrap();
        let b = genkey().unwrap();
        assert_ne!(a, b);
        let bytes = STANDARD.decode(&a).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(bytes[0] & 7, 0);
        assert_eq!(bytes[31] & 0xc0, 0x40);
    }

    #[test]
    fn genpsk_is_32_random_bytes() {
        let a = genpsk().unwrap();
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, genpsk().unwrap());
    }

    #[test]
    fn known_pair_from_wg_man_page() {
        assert_eq!(
            pubkey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n").unwrap(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            "",
            "\n",
            "not a key",
            "AAAA",
            "@@@@",
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk",
        ] {
            assert!(matches!(pubkey(bad), Err(KeysError::BadKey(_))), "{bad:?}");
        }
        assert!(matches!(
            pubkey_from_reader(&[0xff, 0xfe][..]),
            Err(KeysError::BadKey(_))
        ));
        let huge = vec![b'A'; 1 << 20];
        assert!(matches!(
            pubkey_from_reader(&huge[..]),
            Err(KeysError::BadKey(_))
        ));
    }

    #[test]
    fn matches_wg_pubkey() {
        let Some(wg_key) = wg_genkey() else {
            eprintln!("skipping: wg is not installed");
            return;
        };
        let ours = genkey().unwrap();
        for key in [wg_key, ours] {
            let expected = wg_pubkey(&key).unwrap();
            assert_eq!(
                pubkey_from_reader(key.as_bytes()).unwrap(),
                expected,
                "{key}"
            );
        }
    }
}
