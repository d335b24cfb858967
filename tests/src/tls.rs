//! Certificates for TLS tests, made with the openssl CLI: a throwaway CA and a server
//! certificate it signed for one IP address (what a hub's `relay.tls` serves and vpnd's
//! `hubs[].tls.ca_file` trusts).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of a test PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA's certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server's certificate (PEM), signed by the CA, for the IP given.
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `ip` in `dir`.
///
/// # Panics
/// If openssl is missing or fails.
pub fn make_pki(dir: &Path, ip: &str) -> TestPki {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=vpn test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
    ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=vpnhub"];
    csr.extend(ec);
    csr.extend(["-keyout", "hub.key", "-out", "hub.csr"]);
    openssl(dir, &csr);
    let ext = format!(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:{ip}\n"
    );
    std::fs::write(dir.join("hub.ext"), ext).expect("extension file written");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "hub.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "hub.ext",
            "-out",
            "hub.pem",
        ],
    );
    TestPki {
        ca: dir.join("ca.pem"),
        cert: dir.join("hub.pem"),
        key: dir.join("hub.key"),
    }
}
