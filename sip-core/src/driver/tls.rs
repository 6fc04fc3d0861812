//! TLS settings for the driver (rustls with the ring provider).
//!
//! Clients verify the server's certificate against the system's roots (plus an optional CA
//! file) and check it names the SIP domain (RFC 5922): the target's server name, or its
//! address when it has none. A listener needs a certificate chain and its key.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What the driver's TLS client and server use.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Trust the operating system's root certificates (default true when built with
    /// [`TlsSettings::system`]).
    pub system_roots: bool,
    /// Extra trusted CA certificates, PEM files.
    pub ca_files: Vec<PathBuf>,
    /// Extra trusted CA certificates, DER.
    pub ca_certs: Vec<Vec<u8>>,
    /// The listener's certificate chain (PEM file) and key (PEM file).
    pub server_cert_files: Option<(PathBuf, PathBuf)>,
    /// The listener's certificate chain and key, DER (PKCS#8 key).
    pub server_cert_der: Option<(Vec<Vec<u8>>, Vec<u8>)>,
}

impl TlsSettings {
    /// System roots, no listener certificate.
    pub fn system() -> TlsSettings {
        TlsSettings {
            system_roots: true,
            ..TlsSettings::default()
        }
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A listener was asked for without a certificate.
    #[error("a TLS listener needs a certificate and key (server_cert_files)")]
    NoServerCertificate,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration: roots from the system and the CA files.
pub fn client_config(s: &TlsSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if s.system_roots {
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A bad system certificate is skipped, as browsers do.
            let _ = roots.add(cert);
        }
    }
    for path in &s.ca_files {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Pem {
                path: path.clone(),
                message: e.to_string(),
            })?;
        for c in certs {
            roots.add(c)?;
        }
    }
    for der in &s.ca_certs {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server configuration, when a certificate is configured.
pub fn server_config(s: &TlsSettings) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    let (chain, key): (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) =
        if let Some((cert, key)) = &s.server_cert_files {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError::Pem {
                    path: cert.clone(),
                    message: e.to_string(),
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Pem {
                path: key.clone(),
                message: e.to_string(),
            })?;
            (chain, key)
        } else if let Some((chain, key)) = &s.server_cert_der {
            (
                chain.iter().cloned().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(key.clone().into()),
            )
        } else {
            return Ok(None);
        };
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Some(Arc::new(config)))
}
