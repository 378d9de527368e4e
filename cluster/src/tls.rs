//! Mutual TLS between nodes: every node presents a certificate signed by the cluster CA, for the
//! one name all nodes share (`cluster.tls_server_name`), and accepts only peers that do the same.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where the node's TLS material is.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
    /// CA that signs every node's certificate, PEM.
    pub ca: PathBuf,
    /// DNS name in every node's certificate.
    pub server_name: String,
}

/// Why the TLS material could not be used: the setting at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster.{setting} {detail}")]
pub struct TlsError {
    /// The setting (`tls_cert`, `tls_key`, `tls_ca`, `tls_server_name`).
    pub setting: &'static str,
    /// The file and what is wrong.
    pub detail: String,
}

impl TlsError {
    fn new(setting: &'static str, detail: String) -> Self {
        Self { setting, detail }
    }
}

/// Acceptor and connector built from [`TlsFiles`].
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl Tls {
    /// Reads the files and builds both sides. Errors name the file or setting at fault.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
            .and_then(|i| i.collect())
            .map_err(|e| TlsError::new("tls_cert", format!("{}: {e}", files.cert.display())))?;
        if certs.is_empty() {
            return Err(TlsError::new(
                "tls_cert",
                format!("{}: no certificate in the file", files.cert.display()),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key)
            .map_err(|e| TlsError::new("tls_key", format!("{}: {e}", files.key.display())))?;
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(&files.ca)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::new("tls_ca", format!("{}: {e}", files.ca.display())))?;
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| TlsError::new("tls_ca", format!("{}: {e}", files.ca.display())))?;
        }
        if roots.is_empty() {
            return Err(TlsError::new(
                "tls_ca",
                format!("{}: no certificate in the file", files.ca.display()),
            ));
        }
        let roots = Arc::new(roots);
        let server_name = ServerName::try_from(files.server_name.clone()).map_err(|e| {
            TlsError::new("tls_server_name", format!("`{}`: {e}", files.server_name))
        })?;

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::new("tls_ca", e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::new("tls", e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| TlsError::new("tls_cert/tls_key", e.to_string()))?;
        let client = client_config(provider, roots, certs, key)?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}

fn client_config(
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientConfig, TlsError> {
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::new("tls", e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| TlsError::new("tls_cert/tls_key", e.to_string()))
}
