//! TLS for the TCP relay (`relay.tls`): the server configuration from PEM files, checked when
//! the configuration is loaded so that a bad certificate is a configuration error naming the
//! field, not a failure at the first client.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration cannot be built (the message names the file and the fix).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file does not hold a usable chain.
    #[error("relay.tls.cert_file: {0}")]
    Cert(String),
    /// The key file does not hold a usable private key.
    #[error("relay.tls.key_file: {0}")]
    Key(String),
    /// The key does not go with the certificate, or rustls refuses them.
    #[error("relay.tls: {0}")]
    Pair(String),
}

/// Reads the certificate chain and private key (PEM) and builds the server configuration.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| TlsError::Cert(format!("cannot read {}: {e}", cert_file.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            TlsError::Cert(format!(
                "{} is not a PEM certificate chain: {e}",
                cert_file.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            cert_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        TlsError::Key(format!(
            "{} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            key_file.display()
        ))
    })?;
    let config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError::Pair(format!(
                "the key does not match the certificate or is not supported: {e}"
            ))
        })?;
    Ok(Arc::new(config))
}

/// ring's provider. rustls marks it deprecated for lacking post-quantum key exchange; what
/// TLS carries here is WireGuard, encrypted and authenticated on its own (TLS only gets it
/// through firewalls), so that costs nothing, while aws-lc-rs would add a C and CMake build.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
