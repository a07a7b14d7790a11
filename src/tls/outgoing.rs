//! The node's outgoing HTTPS to services on the internet (an SLA webhook, transparency log
//! witnesses): the system's trusted CAs, the node's own crypto provider and TLS versions, no
//! redirects followed, every request bounded in time.

use std::time::Duration;

/// A client for public HTTPS (and plain HTTP) endpoints; `Err` in words.
pub fn public_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot use is skipped, as browsers do.
        let _ = roots.add(certificate);
    }
    let tls = rustls::ClientConfig::builder_with_provider(super::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())
}
