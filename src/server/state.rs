//! What every request handler reaches: the node's services (`crate::services`) and what
//! only the server has — the versions being served, the TLS configuration, metrics, the web
//! forms' CSRF key, audit records waiting for the database, and the staff identities that
//! SIGHUP replaces.

use std::sync::{Arc, RwLock};

use super::audit::AuditBacklog;
use super::served::ServedLists;
use super::ui::CsrfKey;
use crate::config::AdminIdentity;
use crate::metrics::Metrics;
use crate::roles::{Role, roles_of};
use crate::services::Services;
use crate::tls::{ClientIdentity, Tls};

pub struct AppState {
    pub services: Services,
    /// Signs the web forms' CSRF tokens, with the key every replica shares.
    pub ui_csrf: CsrfKey,
    pub served: Arc<ServedLists>,
    pub metrics: Arc<Metrics>,
    pub tls: Arc<Tls>,
    /// Audit records waiting for the database to take writes again.
    pub audit_backlog: AuditBacklog,
    /// `[[admin.identities]]`, replaced when the configuration is reloaded (SIGHUP).
    admin_identities: RwLock<Arc<Vec<AdminIdentity>>>,
}

impl AppState {
    pub fn new(
        services: Services,
        served: Arc<ServedLists>,
        metrics: Arc<Metrics>,
        tls: Arc<Tls>,
        ui_csrf: CsrfKey,
    ) -> Self {
        let identities = services.config.admin.identities.clone();
        Self {
            services,
            ui_csrf,
            served,
            metrics,
            tls,
            audit_backlog: AuditBacklog::default(),
            admin_identities: RwLock::new(Arc::new(identities)),
        }
    }

    /// The roles the current configuration gives a client certificate.
    pub fn roles_of(&self, identity: &ClientIdentity) -> Vec<Role> {
        let identities = self
            .admin_identities
            .read()
            .expect("identities lock")
            .clone();
        roles_of(identity, &identities)
    }

    /// Replaces the staff identities: from the next request on, a removed identity has no
    /// role, and its open connections are closed at their next request.
    pub fn replace_admin_identities(&self, identities: Vec<AdminIdentity>) {
        *self.admin_identities.write().expect("identities lock") = Arc::new(identities);
    }
}
