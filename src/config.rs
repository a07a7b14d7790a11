//! Configuration: a TOML file, then `STELSELNODE_*` environment overrides, then validation
//! with messages that say what to change. Every setting has a safe default, so the node runs
//! without a file (embedded SQLite next to the working directory).
//!
//! Longer than most files (some 470 lines and its tests), on purpose: each setting's
//! documentation, default and validation are read together by an operator changing one, and
//! `deploy/stelselnode.toml` follows this file section by section.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Environment variables with this prefix override settings: `STELSELNODE_<SECTION>_<KEY>`,
/// e.g. `STELSELNODE_DATABASE_URL`.
pub const ENV_PREFIX: &str = "STELSELNODE_";

/// Variables with the prefix that are not settings (the CLI's own, the test harness's).
const NOT_SETTINGS: [&str; 3] = ["STELSELNODE_CONFIG", "STELSELNODE_LOG", "STELSELNODE_TEST_"];

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub publication: PublicationConfig,
    pub signing: SigningConfig,
    pub retention: RetentionConfig,
    pub archive: ArchiveConfig,
    pub sla: SlaConfig,
    pub notify: NotifyConfig,
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub transparency: TransparencyConfig,
}

/// The transparency log's checkpoints (issue 26). Without a key the log is kept and its
/// tiles served, but no checkpoint is signed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransparencyConfig {
    /// The checkpoints' origin line: the log's name, without spaces (e.g.
    /// `medmij.nl/stelselnode`).
    pub origin: String,
    /// The C2SP signed-note Ed25519 signer key (`PRIVATE+KEY+<name>+<id>+<key>`).
    pub key_file: String,
    /// Witnesses asked to cosign each new checkpoint (C2SP tlog-witness).
    pub witnesses: Vec<WitnessConfig>,
}

/// A witness of the transparency log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its submission prefix: `add-checkpoint` is requested below it.
    pub url: String,
    /// Its verifier key, `<name>+<id>+<key>` (type 0x04 for tlog-cosignature/v1, 0x01 for a
    /// plain Ed25519 note signature).
    pub verifier_key: String,
}

/// The three listeners (SPEC §8, §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// PGO and XIS nodes: mutual TLS, Whitelist checked in the handshake.
    pub node_listen: String,
    /// MedMij-loket and beheer staff: mutual TLS, roles by certificate.
    pub admin_listen: String,
    /// Metrics and health: plain HTTP, keep it on an internal address.
    pub ops_listen: String,
    /// The server's certificate chain and PKCS#8 key (PEM).
    pub certificate_chain_file: String,
    pub key_file: String,
    /// CA certificate(s) client certificates must chain to (PEM), and CRLs (PEM).
    pub client_ca_file: String,
    pub crl_files: Vec<String>,
    /// `whitelist` (production) or `trusted-ca` (test environments only).
    pub node_access: crate::tls::NodeAccess,
    /// The `?api=<major>` values the legacy list URLs accept.
    pub legacy_api_majors: Vec<u32>,
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's head (a slow-header client is cut off).
    pub request_timeout_seconds: u64,
    /// How long a TLS handshake may take before the connection is closed.
    pub tls_handshake_timeout_seconds: u64,
    /// How long an idle keep-alive connection is kept open.
    pub keep_alive_seconds: u64,
    /// The most connections one listener holds open at once; more wait to be accepted.
    pub max_connections: usize,
    /// How often a replica looks for versions published elsewhere.
    pub refresh_interval_seconds: u64,
    /// Not ready when the signing certificate expires within this many days.
    pub signing_certificate_margin_days: u32,
    /// HTTP worker threads per listener; 0 = one per core.
    pub workers: usize,
    /// How long a replica's lease on singleton work (the nightly archive, retention, …)
    /// lasts without renewal: another replica takes the work over within 4/3 of this after
    /// the holder dies.
    pub lease_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            node_listen: "127.0.0.1:8443".into(),
            admin_listen: "127.0.0.1:9443".into(),
            ops_listen: "127.0.0.1:9100".into(),
            certificate_chain_file: String::new(),
            key_file: String::new(),
            client_ca_file: String::new(),
            crl_files: Vec::new(),
            node_access: crate::tls::NodeAccess::Whitelist,
            legacy_api_majors: vec![1, 2],
            max_body_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            tls_handshake_timeout_seconds: 10,
            keep_alive_seconds: 30,
            max_connections: 10_000,
            refresh_interval_seconds: 2,
            signing_certificate_margin_days: 14,
            workers: 0,
            lease_seconds: 30,
        }
    }
}

/// Roles on the admin listener, by certificate.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub identities: Vec<AdminIdentity>,
}

/// One staff certificate, named by its subject CN or its SHA-256 fingerprint (hex), and the
/// roles it carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminIdentity {
    pub common_name: Option<String>,
    pub sha256_fingerprint: Option<String>,
    pub roles: Vec<crate::domain::Role>,
}

/// The key that signs published versions, and its certificate chain (signer first).
/// The chain PEM; the key a PKCS#8 PEM file (RSA of 2048 bits or more, or ECDSA P-256) or a
/// PKCS#11 URI of a key in a token (README "Keys").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    pub key_file: String,
    pub certificate_chain_file: String,
    /// A token that has not answered a signature (or a login) within this is given up on
    /// for that publication, which is retried (also for the transparency log's key).
    pub token_timeout_seconds: u64,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self {
            key_file: String::new(),
            certificate_chain_file: String::new(),
            token_timeout_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded default) or `postgres://USER@HOST/DB`; PostgreSQL may name
    /// several hosts, libpq style (`postgres://U@H1:5432,H2:5432/DB?target_session_attrs=read-write`).
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://stelselnode.db".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicationConfig {
    /// How long a published version is valid: `expires_at = valid_from + max_validity`.
    pub max_validity_seconds: u64,
    /// How long a superseded version stays honoured (seed 003 rule 7b: one hour).
    pub grace_period_seconds: u64,
    /// Re-publish unchanged content when the current version is this close to expiry.
    pub refresh_before_seconds: u64,
    /// A publication removing more than this share of a list's entries needs confirmation.
    pub mass_change_threshold_percent: u8,
    /// Approved changes are published this long after they reach the working state
    /// (0: right after the approval; otherwise by the background task, checked every minute).
    pub auto_publish_delay_seconds: u64,
}

impl Default for PublicationConfig {
    fn default() -> Self {
        Self {
            max_validity_seconds: 7 * 24 * 3600,
            grace_period_seconds: 3600,
            refresh_before_seconds: 24 * 3600,
            mass_change_threshold_percent: 10,
            auto_publish_delay_seconds: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Published versions stay retrievable this long after their validity ends (≥ 12).
    pub archive_months: u32,
    /// The audit log is destroyed after this many months (12–15, seed 003 rule 20).
    pub audit_months: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            archive_months: 12,
            audit_months: 13,
        }
    }
}

/// The archive (SPEC §7, issue 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// The CA the signing certificate chains to (PEM): the daily archive check verifies every
    /// stored signature against it (empty: digests and chain only).
    pub ca_file: String,
    /// Where `serve` writes the nightly bundles (empty: it does not; use the systemd timer).
    /// The replica holding the nightly-archive lease writes them: with several replicas,
    /// every one names the same shared directory.
    pub nightly_dir: String,
    /// How many bundles the nightly export keeps.
    pub keep_bundles: usize,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            ca_file: String::new(),
            nightly_dir: String::new(),
            keep_bundles: 400,
        }
    }
}

/// The 2-werkdagen SLA (SPEC §8, issue 13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// Days the loket is closed besides weekends, feestdagen and decree days (`YYYY-MM-DD`).
    pub extra_closed_days: Vec<chrono::NaiveDate>,
    /// An open mutation is at risk (and notified) when less business time than this is left
    /// before its deadline, in werkdagen.
    pub at_risk_werkdagen: f64,
    /// The rolling window of the compliance metrics, in calendar days.
    pub rolling_window_days: u32,
}

impl Default for SlaConfig {
    fn default() -> Self {
        Self {
            extra_closed_days: Vec::new(),
            at_risk_werkdagen: 0.5,
            rolling_window_days: 30,
        }
    }
}

/// Where notifications of an expected breach go, besides the log (empty: not there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// A URL that receives a JSON POST per mutation at risk.
    pub webhook_url: String,
    /// The SMTP relay: `smtp://host:port` (plain, an internal relay), `smtp://host:port?tls=required`
    /// (STARTTLS) or `smtps://host:port`.
    pub smtp_url: String,
    pub mail_from: String,
    /// The MedMij-loket's address, which informs the deelnemer (seed 001).
    pub loket_address: String,
    /// How often open mutations are looked at and due deliveries tried.
    pub check_interval_seconds: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            webhook_url: String::new(),
            smtp_url: String::new(),
            mail_from: String::new(),
            loket_address: String::new(),
            check_interval_seconds: 60,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the configuration is not valid TOML or has an unknown or mistyped setting: {0}")]
    Syntax(String),
    #[error("environment variable {name}: {message}")]
    Environment { name: String, message: String },
    #[error("the configuration is not acceptable:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads `path` (when given), applies the environment overrides in `env`, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?,
            None => String::new(),
        };
        let from_file: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let mut value =
            toml::Value::try_from(&from_file).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        for (name, raw) in env {
            let Some(setting) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NOT_SETTINGS.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            override_setting(&mut value, setting, &raw).map_err(|message| {
                ConfigError::Environment {
                    name: name.clone(),
                    message,
                }
            })?;
        }
        let config: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let url = &self.database.url;
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            problems.push("database.url must start with sqlite:// or postgres://".to_owned());
        }
        let p = &self.publication;
        if p.grace_period_seconds < 3600 {
            problems.push(format!(
                "publication.grace_period_seconds is {}, but a superseded list is honoured for at least one hour (3600)",
                p.grace_period_seconds
            ));
        }
        if p.refresh_before_seconds == 0 || p.refresh_before_seconds >= p.max_validity_seconds {
            problems.push(format!(
                "publication.refresh_before_seconds ({}) must be above 0 and below publication.max_validity_seconds ({})",
                p.refresh_before_seconds, p.max_validity_seconds
            ));
        }
        if p.auto_publish_delay_seconds > 86_400 {
            problems.push(format!(
                "publication.auto_publish_delay_seconds is {}; approved changes wait at most one day (86400) so the 2-werkdagen SLA stays reachable",
                p.auto_publish_delay_seconds
            ));
        }
        if !(1..=100).contains(&p.mass_change_threshold_percent) {
            problems.push("publication.mass_change_threshold_percent must be 1 to 100".to_owned());
        }
        for (i, identity) in self.admin.identities.iter().enumerate() {
            if identity.common_name.is_none() && identity.sha256_fingerprint.is_none() {
                problems.push(format!(
                    "admin.identities[{i}] names neither common_name nor sha256_fingerprint"
                ));
            }
            if identity.roles.is_empty() {
                problems.push(format!("admin.identities[{i}] has no roles"));
            }
        }
        let bounds = [
            (
                "request_timeout_seconds",
                self.server.request_timeout_seconds,
                300,
            ),
            (
                "tls_handshake_timeout_seconds",
                self.server.tls_handshake_timeout_seconds,
                60,
            ),
            ("keep_alive_seconds", self.server.keep_alive_seconds, 600),
        ];
        for (name, value, max) in bounds {
            if !(1..=max).contains(&value) {
                problems.push(format!("server.{name} must be 1 to {max}"));
            }
        }
        if self.archive.keep_bundles == 0 {
            // The next nightly export follows the newest bundle kept.
            problems.push("archive.keep_bundles must be at least 1".to_owned());
        }
        if !(1..=100_000).contains(&self.server.max_connections) {
            problems.push("server.max_connections must be 1 to 100000".to_owned());
        }
        if !(3..=600).contains(&self.server.lease_seconds) {
            problems.push("server.lease_seconds must be 3 to 600".to_owned());
        }
        if self.server.refresh_interval_seconds == 0 {
            problems.push("server.refresh_interval_seconds must be at least 1".to_owned());
        }
        let r = &self.retention;
        if r.archive_months < 12 {
            problems.push(format!(
                "retention.archive_months is {}, below the 12-month log retention (seed 003 rule 21)",
                r.archive_months
            ));
        }
        if !(12..=15).contains(&r.audit_months) {
            problems.push(format!(
                "retention.audit_months is {}, the audit log is kept 12 to 15 months (seed 003 rule 20)",
                r.audit_months
            ));
        }
        problems.extend(self.sla_problems());
        match problems.is_empty() {
            true => Ok(()),
            false => Err(ConfigError::Invalid(problems)),
        }
    }
}

impl Config {
    fn sla_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let (sla, notify) = (&self.sla, &self.notify);
        if !(sla.at_risk_werkdagen > 0.0 && sla.at_risk_werkdagen <= 2.0) {
            problems.push("sla.at_risk_werkdagen must be above 0 and at most 2".to_owned());
        }
        if !(1..=366).contains(&sla.rolling_window_days) {
            problems.push("sla.rolling_window_days must be 1 to 366".to_owned());
        }
        let webhook = notify.webhook_url.as_str();
        if !(webhook.is_empty()
            || webhook.starts_with("https://")
            || webhook.starts_with("http://"))
        {
            problems.push("notify.webhook_url must be an http:// or https:// URL".to_owned());
        }
        if !notify.smtp_url.is_empty() {
            if !(notify.smtp_url.starts_with("smtp://") || notify.smtp_url.starts_with("smtps://"))
            {
                problems.push("notify.smtp_url must start with smtp:// or smtps://".to_owned());
            }
            for (name, value) in [
                ("mail_from", &notify.mail_from),
                ("loket_address", &notify.loket_address),
            ] {
                if value.parse::<lettre::Address>().is_err() {
                    problems.push(format!(
                        "notify.{name} must be an e-mail address when notify.smtp_url is set"
                    ));
                }
            }
        }
        if !(1..=3600).contains(&notify.check_interval_seconds) {
            problems.push("notify.check_interval_seconds must be 1 to 3600".to_owned());
        }
        problems
    }
}

/// Sets the leaf whose `SECTION_KEY` name (upper case) is `setting`, keeping its type.
fn override_setting(root: &mut toml::Value, setting: &str, raw: &str) -> Result<(), String> {
    let toml::Value::Table(sections) = root else {
        unreachable!("a Config serialises to a table")
    };
    for (section_name, section) in sections.iter_mut() {
        let toml::Value::Table(keys) = section else {
            continue;
        };
        for (key, leaf) in keys.iter_mut() {
            if format!("{section_name}_{key}").to_uppercase() != setting {
                continue;
            }
            *leaf = match leaf {
                toml::Value::String(_) => toml::Value::String(raw.to_owned()),
                toml::Value::Integer(_) => toml::Value::Integer(
                    raw.trim()
                        .parse()
                        .map_err(|_| format!("expected a whole number, got \"{raw}\""))?,
                ),
                toml::Value::Boolean(_) => toml::Value::Boolean(
                    raw.trim()
                        .parse()
                        .map_err(|_| format!("expected true or false, got \"{raw}\""))?,
                ),
                _ => toml::from_str::<toml::Table>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .ok_or_else(|| format!("expected a TOML value, got \"{raw}\""))?,
            };
            return Ok(());
        }
    }
    Err(
        "no such setting (settings are STELSELNODE_<SECTION>_<KEY>, e.g. STELSELNODE_DATABASE_URL)"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_str(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), env(vars))
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::load(None, env(&[])).unwrap(), Config::default());
    }

    #[test]
    fn file_then_environment() {
        let config = load_str(
            "[database]\nurl = \"postgres://a@b/c\"\n[publication]\nmax_validity_seconds = 100000\n",
            &[("STELSELNODE_PUBLICATION_MAX_VALIDITY_SECONDS", "200000"), ("STELSELNODE_TEST_DATABASE_URL", "x"), ("PATH", "/bin")],
        )
        .unwrap();
        assert_eq!(config.database.url, "postgres://a@b/c");
        assert_eq!(config.publication.max_validity_seconds, 200000);
    }

    #[test]
    fn mistakes_are_named() {
        let err = load_str("[database]\nurll = \"x\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("urll"), "{err}");
        let err = Config::load(None, env(&[("STELSELNODE_DATABASE_URLL", "x")])).unwrap_err();
        assert!(
            err.to_string().contains("STELSELNODE_DATABASE_URLL"),
            "{err}"
        );
        let err = Config::load(
            None,
            env(&[("STELSELNODE_PUBLICATION_GRACE_PERIOD_SECONDS", "soon")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("whole number"), "{err}");
        let err = Config::load(
            None,
            Vec::new().into_iter().chain(env(&[
                ("STELSELNODE_PUBLICATION_GRACE_PERIOD_SECONDS", "60"),
                ("STELSELNODE_RETENTION_ARCHIVE_MONTHS", "6"),
                ("STELSELNODE_DATABASE_URL", "mysql://x"),
            ])),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("grace_period_seconds")
                && text.contains("archive_months")
                && text.contains("database.url"),
            "{text}"
        );
        let err =
            Config::load(Some(Path::new("/nonexistent/stelselnode.toml")), env(&[])).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/stelselnode.toml"),
            "{err}"
        );
    }
}
