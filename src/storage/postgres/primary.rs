//! Following a PostgreSQL failover (issue 24). The database URL may name several hosts the
//! way libpq does — `postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write`,
//! the convention every PostgreSQL client and Patroni's documentation use — and the node then
//! works with the first that answers and, with `target_session_attrs=read-write` (or
//! `primary`), is not in recovery. We chose this over a proxy in front of PostgreSQL
//! (HAProxy asking Patroni's REST API): a proxy is one more component that must itself be
//! highly available, and the node can tell a primary from a standby just as well.
//!
//! How it follows: every pooled connection is checked when it is opened and again before each
//! use (`pg_is_in_recovery()`, in place of sqlx's ping, so no extra round trip), so a
//! connection to a demoted or standby server is never used for a transaction. With several
//! hosts, a monitor holds one connection of its own to the current primary and asks it every
//! second; when it stops answering or is in recovery, the monitor asks every host in turn,
//! once a second, until one is a primary, and points the pool there. Connections being opened
//! meanwhile switch with it (sqlx re-reads the target on every attempt), so a request that
//! waits for a connection (up to the pool's acquire timeout) may succeed on the new primary;
//! others fail, and are answered 503 with `Retry-After`. A transaction that did not commit
//! rolled back with its connection: nothing half-written remains. The lists are served from
//! memory throughout.

use std::io;
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::storage::StorageError;

/// How long one look at one host may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the monitor asks the primary, and every host while there is none.
const MONITOR_INTERVAL: Duration = Duration::from_secs(1);

/// What a database URL names.
#[derive(Debug, Clone)]
pub(super) struct Hosts {
    /// One set of connection options per host, in the URL's order.
    pub candidates: Vec<PgConnectOptions>,
    /// Only a server that is not in recovery will do (`target_session_attrs=read-write`).
    pub read_write: bool,
}

impl Hosts {
    /// Parses `postgres://[userinfo@]host[:port][,host[:port]…][/db][?params]`. sqlx reads
    /// one host only, so each host gets a URL of its own with the rest unchanged;
    /// `target_session_attrs` is ours and is taken out.
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        let invalid = |why: &str| StorageError::InvalidUrl(why.to_owned());
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected postgres://…"))?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, hostlist) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
            None => (String::new(), authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, query),
            None => (tail, ""),
        };
        let mut read_write = false;
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("target_session_attrs", value)) => {
                    read_write = match value {
                        "any" => false,
                        "read-write" | "primary" => true,
                        _ => {
                            return Err(invalid(
                                "target_session_attrs must be any, read-write or primary",
                            ));
                        }
                    }
                }
                _ => params.push(pair),
            }
        }
        let query = match params.is_empty() {
            true => String::new(),
            false => format!("?{}", params.join("&")),
        };
        let candidates = hostlist
            .split(',')
            .map(|host| {
                if host.is_empty() {
                    return Err(invalid("an empty host in the host list"));
                }
                PgConnectOptions::from_str(&format!("{scheme}://{userinfo}{host}{path}{query}"))
                    .map_err(|e| StorageError::InvalidUrl(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            candidates,
            read_write,
        })
    }
}

/// Whether the server on the other end of `connection` is in recovery (a standby).
async fn in_recovery(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(connection)
        .await
}

/// The server would not take writes: counted as "unavailable" (503), like PostgreSQL's own
/// read-only refusal.
fn standby() -> sqlx::Error {
    sqlx::Error::Io(io::Error::new(
        io::ErrorKind::ReadOnlyFilesystem,
        "the server is in recovery (a standby), not a primary",
    ))
}

fn describe(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// The pool and, with several hosts, the monitor that points it at the primary.
pub(super) struct Primary {
    hosts: Hosts,
    pool: PgPool,
    /// The host the pool connects to now, by index.
    current: Mutex<usize>,
}

impl Primary {
    /// Finds a server that will do (or fails as connecting does), and opens the pool there.
    pub async fn connect(url: &str, pool: PgPoolOptions) -> Result<Arc<Self>, StorageError> {
        let hosts = Hosts::parse(url)?;
        // With one host there is nothing to choose: the pool's own checks refuse a standby.
        let first = match hosts.candidates.len() {
            1 => 0,
            _ => find(&hosts, 0).await?.0,
        };
        let pool = match hosts.read_write {
            true => pool
                .after_connect(|connection, _| {
                    Box::pin(async move {
                        match in_recovery(connection).await? {
                            true => Err(standby()),
                            false => Ok(()),
                        }
                    })
                })
                .test_before_acquire(false)
                .before_acquire(|connection, _| {
                    Box::pin(async move { Ok(!in_recovery(connection).await?) })
                }),
            false => pool,
        }
        .connect_with(hosts.candidates[first].clone())
        .await?;
        let primary = Arc::new(Self {
            hosts,
            pool,
            current: Mutex::new(first),
        });
        if primary.hosts.candidates.len() > 1 {
            tokio::spawn(monitor(Arc::downgrade(&primary)));
        }
        Ok(primary)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Asks the current server every second; when it fails or is in recovery, looks for the
/// primary every second and points the pool there. Ends with the storage.
async fn monitor(primary: Weak<Primary>) {
    let mut watched: Option<PgConnection> = None;
    loop {
        tokio::time::sleep(MONITOR_INTERVAL).await;
        let Some(primary) = primary.upgrade() else {
            return;
        };
        if primary.pool.is_closed() {
            return;
        }
        if let Some(connection) = watched.as_mut() {
            let asked = tokio::time::timeout(PROBE_TIMEOUT, in_recovery(connection)).await;
            if let Ok(Ok(false)) = asked {
                continue;
            }
            watched = None;
        }
        let from = *primary.current.lock().expect("current host lock");
        match find(&primary.hosts, from).await {
            Ok((found, connection)) => {
                if found != from {
                    let target = &primary.hosts.candidates[found];
                    tracing::warn!(
                        from = %describe(&primary.hosts.candidates[from]),
                        to = %describe(target),
                        "following the PostgreSQL primary to another host"
                    );
                    primary.pool.set_connect_options(target.clone());
                    *primary.current.lock().expect("current host lock") = found;
                }
                watched = Some(connection);
            }
            Err(e) => tracing::warn!(error = %e, "no PostgreSQL primary answers; looking again"),
        }
    }
}

/// The first host, starting at `from` and going round, that answers and will do.
async fn find(hosts: &Hosts, from: usize) -> Result<(usize, PgConnection), StorageError> {
    let count = hosts.candidates.len();
    let mut last_error = None;
    for index in (0..count).map(|i| (from + i) % count) {
        let options = &hosts.candidates[index];
        let attempt = tokio::time::timeout(PROBE_TIMEOUT, async {
            let mut connection = options.connect().await?;
            if hosts.read_write && in_recovery(&mut connection).await? {
                return Err(standby());
            }
            Ok::<_, sqlx::Error>(connection)
        })
        .await;
        match attempt {
            Ok(Ok(connection)) => return Ok((index, connection)),
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => last_error = Some(sqlx::Error::PoolTimedOut),
        }
    }
    Err(StorageError::Database(
        last_error.expect("a URL names at least one host"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_hosts_in_order_with_the_rest_shared() {
        let hosts = Hosts::parse(
            "postgres://node:secret@db1:5433,db2,10.0.0.3:6000/registry?target_session_attrs=read-write&sslmode=disable",
        )
        .unwrap();
        assert!(hosts.read_write);
        let described: Vec<_> = hosts.candidates.iter().map(describe).collect();
        assert_eq!(described, ["db1:5433", "db2:5432", "10.0.0.3:6000"]);
        for options in &hosts.candidates {
            assert_eq!(options.get_database(), Some("registry"));
            assert_eq!(options.get_username(), "node");
        }
    }

    #[test]
    fn one_host_without_attributes_is_what_it_was() {
        let hosts = Hosts::parse("postgres://postgres@127.0.0.1:55432/postgres").unwrap();
        assert!(!hosts.read_write);
        assert_eq!(hosts.candidates.len(), 1);
        assert_eq!(describe(&hosts.candidates[0]), "127.0.0.1:55432");
    }

    #[test]
    fn bad_host_lists_and_attributes_are_refused() {
        for url in [
            "postgres://u@h1,,h2/db",
            "postgres://u@h1/db?target_session_attrs=standby",
            "postgres://u@h1:notaport/db",
            "postgres//h1/db",
        ] {
            assert!(
                matches!(Hosts::parse(url), Err(StorageError::InvalidUrl(_))),
                "{url}"
            );
        }
    }
}
