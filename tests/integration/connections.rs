//! Open connections follow trust changes, and what one client can hold is bounded (issue 11,
//! finding 4): a node removed from the Whitelist, or a staff certificate revoked by a new CRL
//! (SIGHUP), is refused on the connection it already holds, which is then closed; idle TLS
//! handshakes and a slow-header client are cut off while everyone else is served.

use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use stelselnode::domain::{EntryChange, ListKind};
use stelselnode::tls::NodeAccess;

use super::support::TestDatabase;
use super::support::http_client::{KeepAlive, connector};
use super::support::server::{NODE_HOST, TestServer};

on_both_backends!(a_node_removed_from_the_whitelist_loses_its_open_connection);

/// A CRL valid from 2024 to 2099 revoking `revoked`, written where the node reads it.
fn write_crl(path: &std::path::Path, server_pki: &super::support::server::Pki, revoked: bool) {
    let revoked_certificates = match revoked {
        true => vec![&server_pki.beheer.certificate],
        false => vec![],
    };
    let crl = server_pki
        .ca
        .crl_pem((2024, 1, 1), (2099, 1, 1), &revoked_certificates)
        .unwrap();
    std::fs::write(path, crl).unwrap();
}

async fn a_node_removed_from_the_whitelist_loses_its_open_connection(db: TestDatabase) {
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let node = connector(server.pki.ca.certificate(), Some(&server.pki.node));
    let mut open = KeepAlive::open(&node, server.app.node_address())
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(open.get("/lists/whitelist").await.unwrap().status, 200);
    }
    // The OCL refers to the host: it goes there first, then from the Whitelist.
    let storage = server.db.storage.clone();
    for list in [ListKind::Ocl, ListKind::Whitelist] {
        let state = storage.working_state(list).await.unwrap();
        let removal = EntryChange::delete(list, NODE_HOST, state.version_of(NODE_HOST));
        storage.apply_change(&removal, Utc::now()).await.unwrap();
        server.publish(list).await;
    }
    let refused = open.get("/lists/whitelist").await.unwrap();
    assert_eq!(refused.status, 403);
    assert!(open.closed_by_server().await);
    let metrics = super::support::http_client::plain_get(server.app.ops_address(), "/metrics")
        .await
        .text();
    assert!(
        metrics.contains("stelselnode_tls_handshakes_refused{reason=\"trust_changed\"} 1"),
        "{metrics}"
    );
    server.app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_or_removed_staff_lose_their_open_connection() {
    let db = super::support::sqlite().await;
    let mut crl_file = None;
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, pki, dir| {
        let path = dir.join("ca.crl.pem");
        write_crl(&path, pki, false);
        config.server.crl_files = vec![path.display().to_string()];
        crl_file = Some(path);
    })
    .await;
    server.publish_all().await;
    let beheer = connector(server.pki.ca.certificate(), Some(&server.pki.beheer));
    let mut open = KeepAlive::open(&beheer, server.app.admin_address())
        .await
        .unwrap();
    assert_eq!(open.get("/audit?limit=1").await.unwrap().status, 200);
    write_crl(crl_file.as_ref().unwrap(), &server.pki, true);
    server.app.reload().unwrap(); // what SIGHUP does
    assert_eq!(open.get("/audit?limit=1").await.unwrap().status, 403);
    assert!(open.closed_by_server().await);
    // Another staff member's connection is not affected, until their identity is removed
    // from the configuration (what SIGHUP does with a changed file).
    let other = connector(server.pki.ca.certificate(), Some(&server.pki.beheer2));
    let mut other = KeepAlive::open(&other, server.app.admin_address())
        .await
        .unwrap();
    assert_eq!(other.get("/audit?limit=1").await.unwrap().status, 200);
    let mut identities = server.app.state().services.config.admin.identities.clone();
    identities.retain(|i| i.common_name.as_deref() != Some("beheer-2"));
    server.app.replace_admin_identities(identities);
    assert_eq!(other.get("/audit?limit=1").await.unwrap().status, 403);
    assert!(other.closed_by_server().await);
    server.app.stop().await;
}

/// Idle connections and slow clients: 2 000 TCP connections that never start their TLS
/// handshake and one client that sends its request head a byte at a time are cut off after
/// the configured timeouts, while a node keeps being served throughout.
#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slow_clients_are_cut_off_while_others_are_served() {
    const IDLE: usize = 2000;
    let db = super::support::sqlite().await;
    let server = TestServer::start_with(db, NodeAccess::Whitelist, |config, _, _| {
        config.server.tls_handshake_timeout_seconds = 2;
        config.server.request_timeout_seconds = 2;
    })
    .await;
    server.publish_all().await;
    let address = server.app.node_address();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(address).await.unwrap());
    }
    let node = connector(server.pki.ca.certificate(), Some(&server.pki.node));
    let mut slow = node
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            TcpStream::connect(address).await.unwrap(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let head = b"GET /lists/zal HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    slow.write_all(head).await.unwrap();
    let slow_client = async {
        // One more byte every 250 ms, never finishing the head.
        while slow.write_all(b"a").await.is_ok() && started.elapsed() < Duration::from_secs(8) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), slow.read_to_end(&mut answer)).await;
        (
            started.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    };
    let served = async {
        let mut served = 0;
        while started.elapsed() < Duration::from_secs(4) {
            let response = super::support::http_client::request(
                &node,
                address,
                "GET",
                "/lists/whitelist",
                &[],
                b"",
            )
            .await
            .unwrap();
            assert_eq!(response.status, 200);
            served += 1;
        }
        served
    };
    let ((slow_for, slow_answer), served) = tokio::join!(slow_client, served);
    assert!(served >= 10, "only {served} requests were served");
    assert!(
        slow_for < Duration::from_secs(8),
        "the slow client was not cut off: {slow_answer}"
    );
    // Every idle connection was closed by the node after the handshake timeout.
    let mut closed = 0;
    for mut connection in idle {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_secs(5), connection.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert_eq!(closed, IDLE);
    server.app.stop().await;
}

/// Issue 21, finding 0: connections that never speak, or stall in their ClientHello, took
/// every worker's handshake slots, and whitelisted nodes waited seconds for a list. With
/// 5 000 idle connections and 500 stalled ClientHellos open, every request of a whitelisted
/// node (a new connection each time: TCP, full TLS handshake, request, answer) is served in
/// under 100 ms.
#[tokio::test(flavor = "multi_thread")]
async fn idle_and_stalled_handshakes_do_not_keep_a_node_waiting() {
    const IDLE: usize = 5000;
    const STALLED: usize = 500;
    let db = super::support::sqlite().await;
    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let address = server.app.node_address();
    let connect = || async move {
        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address))
            .await
            .expect("the node accepts connections")
            .unwrap()
    };
    let mut held = Vec::with_capacity(IDLE + STALLED);
    for _ in 0..IDLE {
        held.push(connect().await);
    }
    // A TLS record announcing a 512-byte ClientHello, and only its first bytes.
    let partial_client_hello = [
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x5a, 0x5a,
    ];
    for _ in 0..STALLED {
        let mut stalled = connect().await;
        stalled.write_all(&partial_client_hello).await.unwrap();
        held.push(stalled);
    }
    let node = connector(server.pki.ca.certificate(), Some(&server.pki.node));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(30),
            super::support::http_client::request(
                &node,
                address,
                "GET",
                "/lists/whitelist",
                &[],
                b"",
            ),
        )
        .await
        .expect("the node answered within 30 s")
        .unwrap();
        assert_eq!(response.status, 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(100),
        "a whitelisted node waited {slowest:?} behind {IDLE} idle and {STALLED} stalled connections"
    );
    drop(held);
    server.app.stop().await;
}
