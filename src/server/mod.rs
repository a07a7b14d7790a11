//! The HTTPS server: the node listener (mTLS, Whitelist in the handshake), the admin
//! listener (mTLS, roles by certificate) and the plain-HTTP ops listener, plus the background
//! work a serving node does (picking up new versions, heartbeat, reload on SIGHUP).

/// Declares a listener's routes once: `register_routes` adds them to an app and `ROUTES`
/// lists them as (method, path pattern), so a test can hold `docs/openapi.yaml` to every
/// route that exists. Each path names its guard (the roles it admits) when it has one.
macro_rules! route_table {
    ($( $path:literal $([$guard:expr])? { $($method:ident => $handler:expr),+ $(,)? } )*) => {
        /// Every route of this listener: (method, path pattern).
        pub const ROUTES: &[(&str, &str)] = &[ $( $( (stringify!($method), $path) ),+ ),* ];

        fn register_routes(cfg: &mut actix_web::web::ServiceConfig) {
            $( cfg.service(
                actix_web::web::resource($path)
                    $( .wrap(actix_web::middleware::from_fn(move |r, n| require($guard, r, n))) )?
                    $( .route(route_table!(@method $method).to($handler)) )+
            ); )*
        }
    };
    (@method get) => { actix_web::web::get() };
    (@method post) => { actix_web::web::post() };
    // GET, and HEAD for the same resource (actix sends no body for HEAD).
    (@method read) => {
        actix_web::web::route().guard(
            actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()),
        )
    };
}

mod admin;
mod audit;
mod error;
mod mutations_api;
mod ops;
mod publications_api;
mod read_api;
mod served;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, HttpServer, middleware, web};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::mutations::StateCache;
use crate::publication::{Publisher, Settings};
use crate::signing::SigningKey;
use crate::storage::Storage;
use crate::tls::{ClientIdentity, Tls, TlsFiles};

pub use admin::ROUTES as ADMIN_ROUTES;
pub use error::ApiError;
pub use ops::readiness_problems;
pub use read_api::{ROUTES as READ_ROUTES, legacy_paths};
pub use served::{ServedLists, ServedVersion};

/// What every request handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub storage: Arc<dyn Storage>,
    pub publisher: Arc<Publisher>,
    pub served: Arc<ServedLists>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub tls: Arc<Tls>,
    /// The working state the mutation checks read.
    pub state_cache: Arc<StateCache>,
    /// Approvals take turns between their re-check and their decision.
    pub approvals: tokio::sync::Mutex<()>,
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
}

/// A running node.
pub struct Application {
    node_address: SocketAddr,
    admin_address: SocketAddr,
    ops_address: SocketAddr,
    state: web::Data<AppState>,
    servers: Vec<(ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
    shutdown: watch::Sender<bool>,
}

fn bind(address: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(address).map_err(|source| StartError::Bind {
        address: address.to_owned(),
        source,
    })
}

fn required(value: &str, name: &str) -> Result<String, StartError> {
    match value.is_empty() {
        true => Err(StartError::Config(format!("{name} is required to serve"))),
        false => Ok(value.to_owned()),
    }
}

/// A route's metric handles, resolved once per path and worker thread.
struct RouteMetrics {
    route: String,
    duration: prometheus::Histogram,
    by_status: std::cell::RefCell<Vec<(u16, prometheus::IntCounter)>>,
}

thread_local! {
    /// Path → route metrics, per listener. Resolving the route pattern re-runs the router and
    /// the labelled lookups hash their labels: on the 304 path that cost more than the handler.
    /// Bounded: cleared when it grows past `ROUTE_CACHE_LIMIT` paths.
    static ROUTE_CACHE: std::cell::RefCell<std::collections::HashMap<&'static str, std::collections::HashMap<String, std::rc::Rc<RouteMetrics>>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}
const ROUTE_CACHE_LIMIT: usize = 1024;

fn route_metrics(
    listener: &'static str,
    request: &ServiceRequest,
    metrics: &Metrics,
) -> std::rc::Rc<RouteMetrics> {
    ROUTE_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let paths = cache.entry(listener).or_default();
        if let Some(found) = paths.get(request.path()) {
            return found.clone();
        }
        if paths.len() >= ROUTE_CACHE_LIMIT {
            paths.clear();
        }
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let resolved = std::rc::Rc::new(RouteMetrics {
            duration: metrics
                .http_request_duration
                .with_label_values(&[listener, &route]),
            route,
            by_status: std::cell::RefCell::new(Vec::new()),
        });
        paths.insert(request.path().to_owned(), resolved.clone());
        resolved
    })
}

/// Counts and times every request by listener and route pattern (never by raw path, so
/// the label set stays bounded), and writes the access log.
async fn observe(
    listener: &'static str,
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = request
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let route = metrics
        .as_ref()
        .map(|m| route_metrics(listener, &request, m));
    // The access log names the client by its certificate, never by request content.
    let logged =
        tracing::enabled!(target: "stelselnode::access", tracing::Level::INFO).then(|| {
            let client = request
                .conn_data::<ClientIdentity>()
                .map(ClientIdentity::subject);
            (request.method().clone(), client)
        });
    let response = next.call(request).await?;
    let status = response.status();
    if let (Some(metrics), Some(route)) = (&metrics, &route) {
        let mut by_status = route.by_status.borrow_mut();
        let counter = match by_status.iter().find(|(code, _)| *code == status.as_u16()) {
            Some((_, counter)) => counter.clone(),
            None => {
                let counter = metrics.http_requests.with_label_values(&[
                    listener,
                    &route.route,
                    status.as_str(),
                ]);
                by_status.push((status.as_u16(), counter.clone()));
                counter
            }
        };
        counter.inc();
        route.duration.observe(started.elapsed().as_secs_f64());
    }
    if let Some((method, client)) = logged {
        tracing::info!(target: "stelselnode::access", listener, %method,
            route = route.as_ref().map_or("-", |r| r.route.as_str()), status = status.as_u16(),
            micros = started.elapsed().as_micros() as u64, client = client.as_deref().unwrap_or("-"), "request");
    }
    Ok(response)
}

/// Puts the verified client certificate's identity on every request of the connection.
fn remember_identity(connection: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(stream) = connection.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>()
        && let Some(identity) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| ClientIdentity::from_certificate(leaf))
    {
        data.insert(identity);
    }
}

impl Application {
    /// Starts the three listeners (any of them may name port 0) and the background tasks.
    pub async fn build(
        config: Config,
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let server = &config.server;
        let tls = Arc::new(Tls::load(TlsFiles {
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
        let publisher = Arc::new(Publisher::new(
            storage.clone(),
            clock.clone(),
            Settings::from(&config.publication),
            key,
        ));
        let served = Arc::new(ServedLists::default());
        if let Err(e) = served.refresh(storage.as_ref(), &tls).await {
            // Not fatal: the node starts not-ready and keeps trying.
            tracing::error!(error = %e, "cannot load the current versions");
        }
        let node_listener = bind(&server.node_listen)?;
        let admin_listener = bind(&server.admin_listen)?;
        let ops_listener = bind(&server.ops_listen)?;
        let addresses = [&node_listener, &admin_listener, &ops_listener]
            .map(|l| l.local_addr().expect("a bound listener has an address"));
        let state = web::Data::new(AppState {
            config: Arc::new(config.clone()),
            storage: storage.clone(),
            publisher,
            served,
            metrics: Arc::new(Metrics::new()),
            clock,
            tls: tls.clone(),
            state_cache: Arc::new(StateCache::new(storage.clone())),
            approvals: tokio::sync::Mutex::new(()),
        });
        let workers = match server.workers {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let timeout = Duration::from_secs(server.request_timeout_seconds);
        let body_limit = server.max_body_bytes;

        let node_state = state.clone();
        let node = HttpServer::new(move || {
            App::new()
                .app_data(node_state.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .wrap(middleware::from_fn(|r, n| observe("node", r, n)))
                .configure(read_api::routes)
        })
        .workers(workers)
        .client_request_timeout(timeout)
        .disable_signals()
        .shutdown_timeout(10)
        .on_connect(remember_identity)
        .listen_rustls_0_23(node_listener, tls.node_config(server.node_access))
        .map_err(|source| StartError::Bind {
            address: server.node_listen.clone(),
            source,
        })?
        .run();

        let admin_state = state.clone();
        let admin = HttpServer::new(move || {
            App::new()
                .app_data(admin_state.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(web::JsonConfig::default().limit(body_limit))
                .wrap(middleware::from_fn(audit::audit))
                .wrap(middleware::from_fn(|r, n| observe("admin", r, n)))
                .configure(admin::routes)
        })
        .workers(workers.min(2))
        .client_request_timeout(timeout)
        .disable_signals()
        .shutdown_timeout(10)
        .on_connect(remember_identity)
        .listen_rustls_0_23(admin_listener, tls.admin_config())
        .map_err(|source| StartError::Bind {
            address: server.admin_listen.clone(),
            source,
        })?
        .run();

        let ops_state = state.clone();
        let ops = HttpServer::new(move || {
            App::new()
                .app_data(ops_state.clone())
                .wrap(middleware::from_fn(|r, n| observe("ops", r, n)))
                .configure(ops::routes)
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .listen(ops_listener)
        .map_err(|source| StartError::Bind {
            address: server.ops_listen.clone(),
            source,
        })?
        .run();

        let servers = [node, admin, ops]
            .into_iter()
            .map(|server: Server| (server.handle(), tokio::spawn(server)))
            .collect();
        let (shutdown, _) = watch::channel(false);
        let publisher = state.publisher.clone();
        tokio::spawn(async move { publisher.warm_up().await });
        tokio::spawn(state.publisher.clone().run_heartbeat(shutdown.subscribe()));
        tokio::spawn(refresh_loop(state.clone(), shutdown.subscribe()));
        tracing::info!(node = %addresses[0], admin = %addresses[1], ops = %addresses[2], "listening");
        Ok(Self {
            node_address: addresses[0],
            admin_address: addresses[1],
            ops_address: addresses[2],
            state,
            servers,
            shutdown,
        })
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
    pub async fn refresh(&self) -> Result<Vec<crate::domain::ListKind>, served::RefreshError> {
        self.state
            .served
            .refresh(self.state.storage.as_ref(), &self.state.tls)
            .await
    }

    /// Re-reads certificates, keys, trust anchors and CRLs (what SIGHUP does).
    pub fn reload(&self) -> Result<(), StartError> {
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
    }
}
