//! Start-up and the running node: the state every handler reaches, the three listeners built
//! by one helper, and the background work (picking up versions published elsewhere, the
//! heartbeat, scheduled publications, reload on SIGHUP).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use tokio::sync::watch;

use super::audit::AuditBacklog;
use super::observe::observe;
use super::served::{RefreshError, ServedLists, ServedVersion};
use super::trust::{follow_trust, remember_peer};
use super::{admin, audit, error, ops, read_api};
use crate::archive::{ArchiveCheck, Exporter, Retention, export_nightly};
use crate::clock::Clock;
use crate::config::{AdminIdentity, Config};
use crate::domain::{ListKind, VersionRecord};
use crate::metrics::Metrics;
use crate::mutations::{MutationWorkflow, WorkflowSettings};
use crate::publication::{PublicationObserver, Publisher, ReadyToServe, Settings};
use crate::roles::{Role, roles_of};
use crate::signing::SigningKey;
use crate::sla::{SlaPolicy, SlaService};
use crate::storage::Storage;
use crate::tls::{ClientIdentity, Peer, Tls};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// What every request handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub storage: Arc<dyn Storage>,
    pub publisher: Arc<Publisher>,
    pub workflow: Arc<MutationWorkflow>,
    pub sla: Arc<SlaService>,
    pub archive_check: Arc<ArchiveCheck>,
    /// Signs the web forms' CSRF tokens.
    pub ui_csrf: super::ui::CsrfKey,
    pub served: Arc<ServedLists>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub tls: Arc<Tls>,
    /// Audit records waiting for the database to take writes again.
    pub audit_backlog: AuditBacklog,
    /// `[[admin.identities]]`, replaced when the configuration is reloaded (SIGHUP).
    admin_identities: RwLock<Arc<Vec<AdminIdentity>>>,
}

impl AppState {
    /// The roles the current configuration gives a client certificate.
    pub fn roles_of(&self, identity: &ClientIdentity) -> Vec<Role> {
        let identities = self
            .admin_identities
            .read()
            .expect("identities lock")
            .clone();
        roles_of(identity, &identities)
    }
}

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
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Notify(#[from] crate::sla::NotifyError),
    #[error("archive.ca_file {file}: {message}")]
    ArchiveCa { file: String, message: String },
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

fn required(value: &str, name: &str) -> Result<String, StartError> {
    match value.is_empty() {
        true => Err(StartError::Config(format!("{name} is required to serve"))),
        false => Ok(value.to_owned()),
    }
}

/// Serves a version the moment this node publishes it (other replicas' versions come with
/// the refresh loop): the approval answer can promise the new list is served.
struct ServeAtOnce {
    served: Arc<ServedLists>,
    tls: Arc<Tls>,
    /// Stores the outcome of the mutations the version published.
    sla: Arc<SlaService>,
    metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl PublicationObserver for ServeAtOnce {
    async fn published(&self, version: &VersionRecord, ready: ReadyToServe) {
        let record = version.clone();
        let served =
            tokio::task::spawn_blocking(move || ServedVersion::from_published(&record, ready))
                .await
                .expect("preparing a version to serve does not panic");
        if let Err(e) = self.served.install(served, &self.tls) {
            // The refresh loop serves it shortly; nothing is lost.
            tracing::error!(error = %e, list = %version.list, "cannot serve the new version yet");
        }
        self.sla.changed();
        self.metrics.count_publication(version);
    }
}

/// The nightly export from `serve` (`archive.nightly_dir`): looks every 15 minutes whether
/// a midnight passed since the newest bundle; failures are logged and tried again.
async fn nightly_loop(state: web::Data<AppState>, mut shutdown: watch::Receiver<bool>) {
    const INTERVAL: Duration = Duration::from_secs(900);
    let dir = std::path::PathBuf::from(&state.config.archive.nightly_dir);
    loop {
        let run = async {
            let signing = &state.config.signing;
            let key = SigningKey::from_pem_files(
                std::path::Path::new(&signing.key_file),
                std::path::Path::new(&signing.certificate_chain_file),
            )
            .map_err(|e| e.to_string())?;
            let trust = state.archive_check.trust();
            let exporter = Exporter {
                storage: state.storage.as_ref(),
                key: &key,
                sla: &state.sla,
                trust: trust.as_ref(),
            };
            let keep = state.config.archive.keep_bundles;
            export_nightly(&exporter, &dir, keep, state.clock.now())
                .await
                .map_err(|e| e.to_string())
        };
        match run.await {
            Ok(Some(summary)) => tracing::info!(
                versions = summary.versions,
                bytes = summary.bytes,
                manifest = %summary.manifest_sha256,
                "nightly archive bundle written"
            ),
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "the nightly archive export failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
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
    /// Starts the three listeners (any of them may name port 0) and the background tasks.
    pub async fn build(
        config: Config,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
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
        let key = SigningKey::from_pem_files(
            std::path::Path::new(&required(&config.signing.key_file, "signing.key_file")?),
            std::path::Path::new(&required(
                &config.signing.certificate_chain_file,
                "signing.certificate_chain_file",
            )?),
        )?;
        storage.migrate().await?;
        let sla_policy = Arc::new(SlaPolicy::new(&config.sla));
        let sla = Arc::new(SlaService::new(
            storage.clone(),
            clock.clone(),
            sla_policy.clone(),
            config.notify.clone(),
        )?);
        // Mutations stored before the SLA was get their deadline now (issue 13).
        if let Err(e) = sla.settle_backlog().await {
            tracing::error!(error = %e, "cannot store SLA deadlines yet; trying again shortly");
        }
        let archive_ca = match config.archive.ca_file.as_str() {
            "" => Vec::new(),
            file => CertificateDer::pem_file_iter(file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StartError::ArchiveCa {
                    file: file.to_owned(),
                    message: e.to_string(),
                })?,
        };
        let archive_check = Arc::new(ArchiveCheck::new(
            storage.clone(),
            clock.clone(),
            archive_ca,
        ));
        let served = Arc::new(ServedLists::default());
        let metrics = Arc::new(Metrics::new());
        let publisher = Arc::new(
            Publisher::new(
                storage.clone(),
                clock.clone(),
                Settings::from(&config.publication),
                key,
            )
            .with_observer(Arc::new(ServeAtOnce {
                served: served.clone(),
                tls: tls.clone(),
                sla: sla.clone(),
                metrics: metrics.clone(),
            })),
        );
        let workflow = Arc::new(MutationWorkflow::new(
            storage.clone(),
            publisher.clone(),
            clock.clone(),
            WorkflowSettings::new(&config.publication, sla_policy),
        ));
        if let Err(e) = served.refresh(storage.as_ref(), &tls).await {
            // Not fatal: the node starts not-ready and keeps trying.
            tracing::error!(error = %e, "cannot load the current versions");
        }
        let state = web::Data::new(AppState {
            config: Arc::new(config.clone()),
            storage,
            publisher,
            workflow,
            sla,
            archive_check,
            ui_csrf: super::ui::CsrfKey::random(),
            served,
            metrics,
            clock,
            tls: tls.clone(),
            audit_backlog: AuditBacklog::default(),
            admin_identities: RwLock::new(Arc::new(config.admin.identities.clone())),
        });
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
                routes: read_api::routes,
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
        // The working state is read before staff can submit, so that the first submissions
        // do not wait for it (issue 12); a failure here is only slower first requests.
        if let Err(e) = state.publisher.state().current().await {
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
        let publisher = state.publisher.clone();
        tokio::spawn(async move { publisher.warm_up().await });
        tokio::spawn(state.publisher.clone().run_heartbeat(shutdown.subscribe()));
        tokio::spawn(state.workflow.clone().run_schedule(shutdown.subscribe()));
        tokio::spawn(refresh_loop(state.clone(), shutdown.subscribe()));
        tokio::spawn(state.sla.clone().run(shutdown.subscribe()));
        let retention = Retention::new(
            state.storage.clone(),
            state.clock.clone(),
            state.config.retention.clone(),
        );
        tokio::spawn(Arc::new(retention).run_schedule(shutdown.subscribe()));
        tokio::spawn(
            state
                .archive_check
                .clone()
                .run_schedule(shutdown.subscribe()),
        );
        if !state.config.archive.nightly_dir.is_empty() {
            tokio::spawn(nightly_loop(state.clone(), shutdown.subscribe()));
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
    pub fn replace_admin_identities(&self, identities: Vec<AdminIdentity>) {
        *self
            .state
            .admin_identities
            .write()
            .expect("identities lock") = Arc::new(identities);
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
            .refresh(self.state.storage.as_ref(), &self.state.tls)
            .await
    }

    /// Re-reads certificates, keys, trust anchors and CRLs, and the staff identities when the
    /// node was started from a configuration file (what SIGHUP does).
    pub fn reload(&self) -> Result<(), StartError> {
        if let Some(file) = &self.config_file {
            let config = Config::load(Some(file), std::env::vars())
                .map_err(|e| StartError::Config(e.to_string()))?;
            self.replace_admin_identities(config.admin.identities);
        }
        self.state.tls.reload()?;
        let config = &self.state.config.signing;
        let key = SigningKey::from_pem_files(
            std::path::Path::new(&config.key_file),
            std::path::Path::new(&config.certificate_chain_file),
        )?;
        self.state.publisher.replace_key(key);
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

async fn refresh_loop(state: web::Data<AppState>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_secs(state.config.server.refresh_interval_seconds);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match state
            .served
            .refresh(state.storage.as_ref(), &state.tls)
            .await
        {
            Ok(changed) if !changed.is_empty() => {
                tracing::info!(lists = ?changed, "serving new versions")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot load new versions"),
        }
        state.audit_backlog.flush(state.storage.as_ref()).await;
    }
}
