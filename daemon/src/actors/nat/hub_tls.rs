//! TLS to a hub (`hubs[].tls`): its TCP service wrapped in TLS, for networks that let only
//! HTTPS out. What it carries is authenticated on its own (registration proofs, sealed
//! signals, WireGuard); the certificate is still checked, against `ca_file` or the public web
//! roots, so that a middlebox cannot stand in for the hub unseen.

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;

/// The certificates in the PEM file `path`; an error naming the file and the fix.
pub fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected -----BEGIN CERTIFICATE-----; give the CA that \
             signed the hub's certificate)",
            path.display()
        ));
    }
    Ok(certs)
}

/// What a connection needs: the client configuration and the name to check.
#[derive(Clone)]
pub struct HubTlsClient {
    /// Trust roots and protocol settings.
    pub config: Arc<ClientConfig>,
    /// The name the hub's certificate must carry.
    pub name: ServerName<'static>,
    /// The hub's TLS port.
    pub port: u16,
}

impl std::fmt::Debug for HubTlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubTlsClient")
            .field("name", &self.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl HubTlsClient {
    /// The client for `tls` (reading its CA file now).
    pub fn new(tls: &crate::config::HubTls) -> Result<HubTlsClient, String> {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(file) => {
                for c in read_roots(file)? {
                    roots
                        .add(c)
                        .map_err(|e| format!("{}: unusable CA certificate: {e}", file.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(tls.server_name.clone())
            .map_err(|e| format!("server name `{}`: {e}", tls.server_name))?;
        Ok(HubTlsClient {
            config: Arc::new(config),
            name,
            port: tls.port,
        })
    }
}

/// ring's provider. rustls marks it deprecated for lacking post-quantum key exchange; what
/// TLS carries here is authenticated and (for WireGuard) encrypted on its own, TLS only gets it
/// through firewalls, while aws-lc-rs would add a C and CMake build.
#[allow(deprecated)]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
