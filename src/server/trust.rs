//! Who is on the other end of a TLS connection, and whether they still may be. The handshake
//! verified the client certificate against the trust of that moment; when trust changes
//! later (a Whitelist published without the peer's host, a CRL that revokes it, new trust
//! anchors), the next request on an open connection re-checks it and, refused, closes the
//! connection. The check runs only when `Tls::generation` moved, so it costs a comparison.

use std::cell::Cell;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use rustls::pki_types::CertificateDer;

use super::AppState;
use super::error::ApiError;
use crate::tls::{ClientIdentity, Peer};

/// The verified peer of one connection and the last verdict on it.
struct ConnectionTrust {
    chain: Vec<CertificateDer<'static>>,
    /// The trust generation the verdict is for; none yet: the first request checks.
    checked: Cell<Option<u64>>,
    trusted: Cell<bool>,
}

/// Puts the verified client certificate's identity, and its chain for later re-checks, on
/// every request of the connection.
pub(super) fn remember_peer(connection: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    let Some(stream) = connection.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() else {
        return;
    };
    let Some(chain) = stream.get_ref().1.peer_certificates() else {
        return;
    };
    if let Some(identity) = chain
        .first()
        .and_then(|leaf| ClientIdentity::from_certificate(leaf))
    {
        data.insert(identity);
    }
    data.insert(ConnectionTrust {
        chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
        checked: Cell::new(None),
        trusted: Cell::new(true),
    });
}

/// Lets a request through while its connection's peer is still trusted as `peer`; otherwise
/// answers 403 and closes the connection.
pub(super) async fn follow_trust(
    peer: Peer,
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(trust) = request.conn_data::<ConnectionTrust>() {
        let tls = &request
            .app_data::<web::Data<AppState>>()
            .expect("state is registered")
            .tls;
        let generation = tls.generation();
        if trust.checked.get() != Some(generation) {
            trust.trusted.set(tls.still_trusted(&trust.chain, peer));
            trust.checked.set(Some(generation));
        }
        if !trust.trusted.get() {
            tracing::info!(client = %request.conn_data::<ClientIdentity>()
                .map_or_else(|| "unknown".into(), ClientIdentity::subject),
                "peer no longer trusted; connection closed");
            let mut response = ApiError::Forbidden.error_response();
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            return Ok(request.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(request).await?.map_into_left_body())
}
