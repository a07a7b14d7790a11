//! Start-up and the running node: the state every handler reaches, the three listeners built
//! by one helper, and the background work (picking up versions published elsewhere, the
//! heartbeat, scheduled publications, reload on SIGHUP).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use tokio::sync::watch;

use super::observe::observe;
use super::served::{RefreshError, ServeAtOnce, ServedLists};
use super::state::AppState;
use super::trust::{follow_trust, remember_peer};
use super::ui::{CSRF_SECRET, CsrfKey};
use super::{admin, audit, error, log_api, ops, read_api};
use crate::config::Config;
use crate::domain::ListKind;
use crate::leases::Singleton;
use crate::metrics::Metrics;
use crate::services::{Services, checkpoint_signer, signing_key};
use crate::tls::{Peer, Tls};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("server configuration: {0}")]
    Config(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error(transparent)]
    TransparencyKey(#[from] crate::transparency::CheckpointKeyError),
    #[error(
        "the database holds an archive restore that did not finish: restore again into an \
         empty database before serving from it"
    )]
    UnfinishedRestore,
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("cannot publish the lists restored from the archive: {0}")]
    PublishRestored(#[from] crate::publication::PublishError),
}

/// A running node.
pub struct Application {
    node_address: SocketAddr,
    admin_address: SocketAddr,
    ops_address: SocketAddr,
    state: web::Data<AppState>,
    servers: Vec<(ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
    shutdown: watch::Sender<bool>,
    /// Where `reload` reads the staff identities again, when the node was started from a file.
    config_file: Option<PathBuf>,
}

/// What PGO/XIS nodes reach: the lists and the transparency log.
fn node_routes(cfg: &mut web::ServiceConfig) {
    read_api::routes(cfg);
    log_api::routes(cfg);
}

fn required(value: &str, name: &str) -> Result<String, StartError> {
    match value.is_empty() {
        true => Err(StartError::Config(format!("{name} is required to serve"))),
        false => Ok(value.to_owned()),
    }
}

/// One listener: where, with which TLS and peers (none for ops), how many workers, which
/// routes, and whether every request is audited (admin).
struct Listener {
    name: &'static str,
    address: String,
    tls: Option<(rustls::ServerConfig, Peer)>,
    workers: usize,
    routes: fn(&mut web::ServiceConfig),
    audited: bool,
}

fn start(
    listener: Listener,
    state: web::Data<AppState>,
    config: &crate::config::ServerConfig,
) -> Result<(Server, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        address: listener.address.clone(),
        source,
    };
    let socket = TcpListener::bind(&listener.address).map_err(bind_error)?;
    let address = socket.local_addr().map_err(bind_error)?;
    let body_limit = config.max_body_bytes;
    let Listener {
        name,
        routes,
        audited,
        ..
    } = listener;
    let peer = listener.tls.as_ref().map(|(_, peer)| *peer);
    let per_worker_connections = config.max_connections.div_ceil(listener.workers).max(1);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(
                web::JsonConfig::default()
                    .limit(body_limit)
                    .error_handler(error::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .wrap(Condition::new(
                peer.is_some(),
                from_fn(move |r, n| follow_trust(peer.unwrap_or(Peer::Admin), r, n)),
            ))
            .wrap(Condition::new(audited, from_fn(audit::audit)))
            .wrap(from_fn(move |r, n| observe(name, r, n)))
            .configure(routes)
            .default_service(web::to(error::unknown_route))
    })
    .workers(listener.workers)
    .client_request_timeout(Duration::from_secs(config.request_timeout_seconds))
    .tls_handshake_timeout(Duration::from_secs(config.tls_handshake_timeout_seconds))
    .keep_alive(Duration::from_secs(config.keep_alive_seconds))
    // actix counts connections per worker.
    .max_connections(per_worker_connections)
    // A connection that never sends its ClientHello (or stalls in it) costs a socket and a
    // few hundred bytes, but actix also counts it against a per-worker cap on concurrent
    // handshakes (256 by default): a few hundred idle connections then stopped every worker
    // from accepting, and whitelisted nodes waited for the handshake timeout (issue 21).
    // Pending handshakes are bounded by `max_connections` alone, and each by the handshake
    // timeout; a per-source limit belongs in front of the node (deploy/nftables.conf).
    .max_connection_rate(per_worker_connections)
    // Nagle's algorithm held a large answer's last TCP segment until the client's delayed
    // ACK (40 ms): at 16 connections gzip answers had a 45 ms p99 and a fifth of nginx's
    // throughput (nginx sets TCP_NODELAY on keep-alive connections too). Every answer is
    // written whole, so nothing is gained by Nagle.
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(10)
    .on_connect(remember_peer);
    let server = match listener.tls {
        Some((tls, _)) => server.listen_rustls_0_23(socket, tls),
        None => server.listen(socket),
    }
    .map_err(bind_error)?
    .run();
    Ok((server, address))
}

impl Application {
    /// Starts the three listeners (any of them may name port 0) and the background tasks,
    /// on `services` (`Services::build`).
    pub async fn build(services: Services) -> Result<Self, StartError> {
        let config = services.config.clone();
        let server = &config.server;
        let tls = Arc::new(Tls::load(crate::tls::TlsFiles {
            certificate_chain: required(
                &server.certificate_chain_file,
                "server.certificate_chain_file",
            )?,
            key: required(&server.key_file, "server.key_file")?,
            client_ca: required(&server.client_ca_file, "server.client_ca_file")?,
            crls: server.crl_files.clone(),
        })?);
        // A node that serves publishes: it needs its signing key (the CLI may do without).
        services.publisher.signing_key()?;
        if services.storage.restore_unfinished().await? {
            return Err(StartError::UnfinishedRestore);
        }
        // Mutations stored before the SLA was get their deadline now (issue 13).
        if let Err(e) = services.sla.settle_backlog().await {
            tracing::error!(error = %e, "cannot store SLA deadlines yet; trying again shortly");
        }
        let served = Arc::new(ServedLists::default());
        let metrics = Arc::new(Metrics::new());
        services.publisher.observe(Arc::new(ServeAtOnce {
            served: served.clone(),
            tls: tls.clone(),
            sla: services.sla.clone(),
            metrics: metrics.clone(),
            transparency: services.transparency.clone(),
            log_store: services.storage.clone(),
        }));
        // After a restore, every list moves past the Volgnummers that may have been lost
        // before anything is served (issue 23); a node that cannot does not start.
        for version in services.publisher.publish_restored().await? {
            tracing::warn!(list = %version.list, volgnummer = %version.volgnummer,
                "published after an archive restore");
        }
        if let Err(e) = served.refresh(services.storage.as_ref(), &tls).await {
            // Not fatal: the node starts not-ready and keeps trying.
            tracing::error!(error = %e, "cannot load the current versions");
        }
        catch_up_log(&services).await;
        // The web forms' key, shared through the database: a form opened on one replica is
        // posted to whichever the load balancer picks (issue 24).
        let secret = services
            .storage
            .shared_secret(CSRF_SECRET, &CsrfKey::candidate(), services.clock.now())
            .await?;
        let csrf = CsrfKey::from_secret(&secret);
        let state = web::Data::new(AppState::new(services, served, metrics, tls.clone(), csrf));
        let workers = match server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let listeners = [
            Listener {
                name: "node",
                address: server.node_listen.clone(),
                tls: Some((
                    tls.node_config(server.node_access),
                    Peer::Node(server.node_access),
                )),
                workers,
                routes: node_routes,
                audited: false,
            },
            Listener {
                name: "admin",
                address: server.admin_listen.clone(),
                tls: Some((tls.admin_config(), Peer::Admin)),
                workers: workers.min(2),
                routes: admin::routes,
                audited: true,
            },
            Listener {
                name: "ops",
                address: server.ops_listen.clone(),
                tls: None,
                workers: 1,
                routes: ops::routes,
                audited: false,
            },
        ];
        let services = &state.services;
        // The working state is read before staff can submit, so that the first submissions
        // do not wait for it (issue 12); a failure here is only slower first requests.
        if let Err(e) = services.publisher.state().current().await {
            tracing::warn!(error = %e, "cannot read the working state ahead of the first request");
        }
        let mut servers = Vec::new();
        let mut addresses = Vec::new();
        for listener in listeners {
            let (server, address) = start(listener, state.clone(), server)?;
            servers.push((server.handle(), tokio::spawn(server)));
            addresses.push(address);
        }
        let (shutdown, _) = watch::channel(false);
        let publisher = services.publisher.clone();
        tokio::spawn(async move { publisher.warm_up().await });
        // Singleton work runs on the replica holding its lease (`crate::leases`).
        let leases = &services.leases;
        tokio::spawn(services.publisher.clone().run_heartbeat(
            leases.keep(Singleton::Heartbeat, shutdown.subscribe()),
            shutdown.subscribe(),
        ));
        tokio::spawn(services.workflow.clone().run_schedule(shutdown.subscribe()));
        tokio::spawn(refresh_loop(state.clone(), shutdown.subscribe()));
        let sla = services.sla.clone();
        tokio::spawn(leases.clone().run_while_held(
            Singleton::SlaRounds,
            shutdown.subscribe(),
            move |stop| sla.clone().run(stop),
        ));
        let retention = services.retention.clone();
        tokio::spawn(leases.clone().run_while_held(
            Singleton::Retention,
            shutdown.subscribe(),
            move |stop| retention.clone().run_schedule(stop),
        ));
        let check = services.archive_check.clone();
        tokio::spawn(leases.clone().run_while_held(
            Singleton::ArchiveCheck,
            shutdown.subscribe(),
            move |stop| check.clone().run_schedule(stop),
        ));
        let archive = &services.config.archive;
        if !archive.nightly_dir.is_empty() {
            let (exports, dir, keep) = (
                services.exports.clone(),
                PathBuf::from(&archive.nightly_dir),
                archive.keep_bundles,
            );
            tokio::spawn(leases.clone().run_while_held(
                Singleton::NightlyArchive,
                shutdown.subscribe(),
                move |stop| exports.clone().run_nightly(dir.clone(), keep, stop),
            ));
        }
        let [node_address, admin_address, ops_address]: [SocketAddr; 3] =
            addresses.try_into().expect("three listeners were started");
        tracing::info!(node = %node_address, admin = %admin_address, ops = %ops_address, "listening");
        Ok(Self {
            node_address,
            admin_address,
            ops_address,
            state,
            servers,
            shutdown,
            config_file: None,
        })
    }

    /// `reload` (SIGHUP) also reads `[[admin.identities]]` again from `file`; other settings
    /// need a restart.
    pub fn reloading_identities_from(mut self, file: PathBuf) -> Self {
        self.config_file = Some(file);
        self
    }

    /// Replaces the staff identities: from the next request on, a removed identity has no role,
    /// and its open connections are closed at their next request.
    pub fn replace_admin_identities(&self, identities: Vec<crate::config::AdminIdentity>) {
        self.state.replace_admin_identities(identities);
    }

    pub fn node_address(&self) -> SocketAddr {
        self.node_address
    }
    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }
    pub fn ops_address(&self) -> SocketAddr {
        self.ops_address
    }
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Picks up versions published elsewhere (the CLI, another replica) now.
    pub async fn refresh(&self) -> Result<Vec<ListKind>, RefreshError> {
        self.state
            .served
            .refresh(self.state.services.storage.as_ref(), &self.state.tls)
            .await
    }

    /// Re-reads certificates, keys, trust anchors and CRLs, and the staff identities when the
    /// node was started from a configuration file (what SIGHUP does).
    pub fn reload(&self) -> Result<(), StartError> {
        let services = &self.state.services;
        // The signing key as the configuration names it now: a key rollover may move it to
        // another file or into a token (README "Keys").
        let config = match &self.config_file {
            Some(file) => {
                let config = Config::load(Some(file), std::env::vars())
                    .map_err(|e| StartError::Config(e.to_string()))?;
                self.replace_admin_identities(config.admin.identities.clone());
                config
            }
            None => services.config.as_ref().clone(),
        };
        self.state.tls.reload()?;
        if let Some(key) = signing_key(&config.signing)? {
            services.publisher.replace_key(key);
        }
        if let Some(signer) = checkpoint_signer(&config)? {
            services.transparency.replace_signer(signer);
        }
        tracing::info!("certificates and keys reloaded");
        Ok(())
    }

    /// Serves until SIGTERM or Ctrl-C; SIGHUP reloads certificates and keys.
    pub async fn run_until_stopped(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).expect("install the SIGHUP handler");
        let mut terminate = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
        loop {
            tokio::select! {
                _ = hangup.recv() => {
                    if let Err(e) = self.reload() {
                        tracing::error!(error = %e, "reload failed; the previous certificates stay in use");
                    }
                }
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        self.stop().await;
    }

    /// Graceful shutdown: stops accepting, lets requests in flight finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for (handle, task) in self.servers {
            handle.stop(true).await;
            let _ = task.await;
        }
    }
}

/// Reads the transparency log's new leaves (another replica's or the CLI's publications) and
/// asks the witnesses that have not cosigned the checkpoint yet.
async fn catch_up_log(services: &Services) {
    if let Err(e) = services
        .transparency
        .catch_up(services.storage.as_ref())
        .await
    {
        tracing::error!(error = %e, "cannot read the transparency log");
    }
    services.transparency.cosign().await;
}

async fn refresh_loop(state: web::Data<AppState>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(state.services.config.server.refresh_interval_seconds);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match state
            .served
            .refresh(state.services.storage.as_ref(), &state.tls)
            .await
        {
            Ok(changed) if !changed.is_empty() => {
                tracing::info!(lists = ?changed, "serving new versions");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot load new versions"),
        }
        catch_up_log(&state.services).await;
        state
            .audit_backlog
            .flush(state.services.storage.as_ref())
            .await;
    }
}
