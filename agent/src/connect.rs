//! TLS connections to the hub: unverified discovery checked against a pinned CA hash, then
//! connections verified against the pinned CA, with or without the cluster's certificate.

use std::sync::Arc;
use std::time::Duration;

use flotilla_proto::v1::agent_hub_client::AgentHubClient;
use flotilla_proto::v1::{DiscoverRequest, EnrollRequest, RenewRequest};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Channel, Endpoint};

/// Connection errors.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `--hub` is not `host:port`.
    #[error("invalid hub address {0:?}: expected host:port")]
    Address(String),
    /// Bad PEM or TLS settings.
    #[error("TLS: {0}")]
    Tls(String),
    /// The hub's CA does not match the pinned hash.
    #[error(
        "the hub's CA certificate has hash {actual}, but {expected} was expected: refusing to connect (check --ca-hash, or you may be talking to the wrong server)"
    )]
    CaMismatch {
        /// The hash the caller expected.
        expected: String,
        /// The hash of what the hub presented.
        actual: String,
    },
    /// The hub's CA answer (or the stored CA) is not exactly one certificate.
    #[error(
        "the hub's CA is not a single certificate ({0}): refusing to trust it (you may be talking to an impostor; for a stored credential, remove it and enroll again)"
    )]
    NotOneCa(String),
    /// The connection failed.
    #[error("connecting to the hub at {addr}: {source}")]
    Transport {
        /// The hub address.
        addr: String,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
    /// The hub answered with an error.
    #[error("{}", .0.message())]
    Rpc(#[from] tonic::Status),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any server certificate: used only to fetch the CA, which is then checked against
/// the pinned hash before anything is trusted.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_err(e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Tls(e.to_string())
}

/// The one certificate of a hub CA PEM. Anything else is refused: several certificates (a
/// bundle or a chain) would let a certificate that is not the pinned one be trusted, and other
/// PEM sections have no business in a CA answer.
pub fn single_ca(pem: &str) -> Result<CertificateDer<'static>, ConnectError> {
    use rustls::pki_types::pem::SectionKind;
    let mut certs = Vec::new();
    for section in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem.as_bytes()) {
        match section.map_err(tls_err)? {
            (SectionKind::Certificate, der) => certs.push(CertificateDer::from(der)),
            (kind, _) => {
                return Err(ConnectError::NotOneCa(format!(
                    "it holds a {kind:?} section besides certificates"
                )));
            }
        }
    }
    match certs.len() {
        1 => Ok(certs.remove(0)),
        n => Err(ConnectError::NotOneCa(format!(
            "it holds {n} certificates; exactly one is expected"
        ))),
    }
}

/// The hash of a PEM CA certificate (exactly one), in `--ca-hash` form.
pub fn ca_hash_of_pem(pem: &str) -> Result<String, ConnectError> {
    Ok(flotilla_proto::ca_hash_of_der(single_ca(pem)?.as_ref()))
}

/// The CA certificate of `pem` if it is exactly one certificate hashing to `expected_hash`.
pub fn pinned_ca(pem: &str, expected_hash: &str) -> Result<CertificateDer<'static>, ConnectError> {
    let der = single_ca(pem)?;
    let actual = flotilla_proto::ca_hash_of_der(der.as_ref());
    if !actual.eq_ignore_ascii_case(expected_hash.trim()) {
        return Err(ConnectError::CaMismatch {
            expected: expected_hash.trim().to_owned(),
            actual,
        });
    }
    Ok(der)
}

/// A client identity: certificate and key PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never goes to logs.
        f.debug_struct("ClientIdentity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The identity a long-lived channel presents: replaced on rotation, read at every new
/// connection.
pub type SharedIdentity = Arc<std::sync::RwLock<ClientIdentity>>;

/// A new key pair (made here, never sent anywhere) and a certificate signing request for it
/// naming `cluster`: (key PEM, request PEM).
pub fn new_key_and_csr(cluster: &str) -> Result<(String, String), ConnectError> {
    let key = rcgen::KeyPair::generate().map_err(tls_err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cluster);
    let csr = params.serialize_request(&key).map_err(tls_err)?;
    Ok((key.serialize_pem(), csr.pem().map_err(tls_err)?))
}

/// The validity of a PEM certificate as Unix seconds: (not before, not after).
pub fn validity(cert_pem: &str) -> Result<(i64, i64), ConnectError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(tls_err)?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(tls_err)?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

fn verified_config(
    ca_pem: &str,
    identity: Option<&ClientIdentity>,
) -> Result<ClientConfig, ConnectError> {
    // The trust store holds exactly the pinned certificate, never a bundle.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(single_ca(ca_pem)?).map_err(tls_err)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots);
    let mut cfg = match identity {
        Some(id) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(tls_err)?;
            let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).map_err(tls_err)?;
            builder.with_client_auth_cert(certs, key).map_err(tls_err)?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

fn unverified_config() -> Result<ClientConfig, ConnectError> {
    let p = provider();
    let mut cfg = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(p)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

fn split_host(addr: &str) -> Result<String, ConnectError> {
    let bad = || ConnectError::Address(addr.to_owned());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(host.to_owned())
}

/// Where a channel gets its TLS configuration, at every new connection.
type ConfigSource = Arc<dyn Fn() -> Result<Arc<ClientConfig>, ConnectError> + Send + Sync>;

fn fixed(cfg: ClientConfig) -> ConfigSource {
    let cfg = Arc::new(cfg);
    Arc::new(move || Ok(cfg.clone()))
}

/// A gRPC channel to `addr` over TLS configured by `config` (asked once up front, so a
/// broken configuration fails here, then at every connection).
async fn channel(addr: &str, config: ConfigSource, lazy: bool) -> Result<Channel, ConnectError> {
    let host = split_host(addr)?;
    let server_name = ServerName::try_from(host).map_err(tls_err)?;
    config()?;
    let target = addr.to_owned();
    let svc = tower::service_fn(move |_uri: http::Uri| {
        let config = config.clone();
        let server_name = server_name.clone();
        let target = target.clone();
        async move {
            let cfg = config().map_err(std::io::Error::other)?;
            let connector = tokio_rustls::TlsConnector::from(cfg);
            let tcp = tokio::net::TcpStream::connect(&target).await?;
            let _ = tcp.set_nodelay(true);
            let tls = connector.connect(server_name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|source| ConnectError::Transport {
            addr: addr.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(10))
        .initial_stream_window_size(flotilla_proto::proxy::STREAM_WINDOW)
        .initial_connection_window_size(flotilla_proto::proxy::connection_window(
            crate::proxy::MAX_EXCHANGES,
        ))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if lazy {
        return Ok(endpoint.connect_with_connector_lazy(svc));
    }
    endpoint
        .connect_with_connector(svc)
        .await
        .map_err(|source| ConnectError::Transport {
            addr: addr.to_owned(),
            source,
        })
}

/// A client with the message size limits of the protocol.
pub fn client(ch: Channel) -> AgentHubClient<Channel> {
    AgentHubClient::new(ch)
        .max_decoding_message_size(flotilla_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(flotilla_proto::MAX_MESSAGE_BYTES)
}

/// Fetches the hub's CA without trusting the connection and checks it against
/// `expected_hash`; returns the CA PEM, which can then be pinned.
pub async fn discover(addr: &str, expected_hash: &str) -> Result<String, ConnectError> {
    let ch = channel(addr, fixed(unverified_config()?), false).await?;
    let ca_pem = client(ch)
        .discover(DiscoverRequest {})
        .await?
        .into_inner()
        .ca_pem;
    pinned_ca(&ca_pem, expected_hash)?;
    Ok(ca_pem)
}

/// Exchanges a bootstrap token for the cluster's credential, over a connection verified
/// against `ca_pem`: the key pair is made here and only a signing request is sent.
pub async fn enroll(
    addr: &str,
    ca_pem: &str,
    cluster: &str,
    token: &str,
) -> Result<ClientIdentity, ConnectError> {
    let (key_pem, csr_pem) = new_key_and_csr(cluster)?;
    let ch = channel(addr, fixed(verified_config(ca_pem, None)?), false).await?;
    let resp = client(ch)
        .enroll(EnrollRequest {
            cluster_name: cluster.to_owned(),
            token: token.to_owned(),
            csr_pem,
        })
        .await?
        .into_inner();
    Ok(ClientIdentity {
        cert_pem: resp.cert_pem,
        key_pem,
    })
}

/// Renews the cluster's certificate with a new key pair, authenticated by the current one.
pub async fn renew(
    addr: &str,
    ca_pem: &str,
    cluster: &str,
    current: &ClientIdentity,
) -> Result<ClientIdentity, ConnectError> {
    let (key_pem, csr_pem) = new_key_and_csr(cluster)?;
    let ch = channel(addr, fixed(verified_config(ca_pem, Some(current))?), false).await?;
    let resp = client(ch)
        .renew(RenewRequest { csr_pem })
        .await?
        .into_inner();
    Ok(ClientIdentity {
        cert_pem: resp.cert_pem,
        key_pem,
    })
}

/// A channel authenticated with the cluster's certificate, verified against `ca_pem`; it
/// connects on first use and reconnects by itself.
pub async fn authenticated(
    addr: &str,
    ca_pem: &str,
    identity: &ClientIdentity,
) -> Result<Channel, ConnectError> {
    authenticated_shared(
        addr,
        ca_pem,
        Arc::new(std::sync::RwLock::new(identity.clone())),
    )
    .await
}

/// Like [`authenticated`], presenting whatever `identity` holds when a connection is made,
/// so a renewed certificate is used from the next reconnection on.
pub async fn authenticated_shared(
    addr: &str,
    ca_pem: &str,
    identity: SharedIdentity,
) -> Result<Channel, ConnectError> {
    let ca_pem = ca_pem.to_owned();
    let source: ConfigSource = Arc::new(move || {
        let id = identity.read().unwrap_or_else(|e| e.into_inner()).clone();
        verified_config(&ca_pem, Some(&id)).map(Arc::new)
    });
    channel(addr, source, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            split_host("127.0.0.1:7443").ok().as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(split_host("[::1]:7443").ok().as_deref(), Some("::1"));
        assert_eq!(
            split_host("hub.example:443").ok().as_deref(),
            Some("hub.example")
        );
        assert!(split_host("hub.example").is_err());
        assert!(split_host(":443").is_err());
        assert!(split_host("h:99999").is_err());
    }

    fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        (cert, key)
    }

    #[test]
    fn only_exactly_the_pinned_certificate_is_trusted() {
        let (real, real_key) = ca("real hub CA");
        let (own, _) = ca("impostor CA");
        let real_pem = real.pem();
        let pin = ca_hash_of_pem(&real_pem).unwrap_or_default();
        assert!(pinned_ca(&real_pem, &pin).is_ok());
        assert!(verified_config(&real_pem, None).is_ok());

        // The impostor's answer: the real CA first, its own after it. The first certificate
        // hashes to the pin, but the bundle is refused, for discovery and from storage.
        let bundle = format!("{real_pem}{}", own.pem());
        for refused in [
            pinned_ca(&bundle, &pin).err(),
            ca_hash_of_pem(&bundle).err(),
            verified_config(&bundle, None).err(),
        ] {
            assert!(
                matches!(refused, Some(ConnectError::NotOneCa(_))),
                "{refused:?}"
            );
        }

        // A chain (a leaf signed by the real CA, then the CA) is not a CA answer either.
        let leaf_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let issuer = rcgen::Issuer::from_ca_cert_der(real.der(), &real_key)
            .unwrap_or_else(|e| panic!("{e}"));
        let leaf = rcgen::CertificateParams::new(vec!["hub.example".to_owned()])
            .unwrap_or_else(|e| panic!("{e}"))
            .signed_by(&leaf_key, &issuer)
            .unwrap_or_else(|e| panic!("{e}"));
        let chain = format!("{}{real_pem}", leaf.pem());
        assert!(matches!(
            pinned_ca(&chain, &pin),
            Err(ConnectError::NotOneCa(_))
        ));

        // A key or other section beside the certificate is refused.
        let with_key = format!("{real_pem}{}", real_key.serialize_pem());
        assert!(matches!(
            pinned_ca(&with_key, &pin),
            Err(ConnectError::NotOneCa(_))
        ));

        // Another CA alone does not hash to the pin.
        assert!(matches!(
            pinned_ca(&own.pem(), &pin),
            Err(ConnectError::CaMismatch { .. })
        ));
    }
}
