//! `stelselnode import`, `export` and `publish`: a list's working state in and out, and its
//! publication, on the node's services.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{cli_actor, refused};
use crate::domain::ListKind;
use crate::import::{ImportError, import_document, render_working_state};
use crate::publication::{PublishError, PublishOptions};
use crate::services::Services;

pub async fn import(services: &Services, list: ListKind, file: &Path) -> anyhow::Result<ExitCode> {
    let document =
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let now = services.clock.now();
    match import_document(
        services.storage.as_ref(),
        list,
        &document,
        &cli_actor(),
        now,
    )
    .await
    {
        Ok(outcome) => {
            tracing::info!(%list, entries = outcome.entries, changed = outcome.changed,
                removed = outcome.removed, "list imported");
            eprintln!(
                "imported {list}: {} entries ({} added or changed, {} removed); next Volgnummer {}",
                outcome.entries,
                outcome.changed,
                outcome.removed,
                outcome.head.next_volgnummer()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ImportError::Refused { list, violations }) => {
            tracing::warn!(%list, refusals = violations.as_slice().len(), "import refused");
            let heading = format!("{} refused, nothing was stored:", file.display());
            Ok(refused(&heading, &violations))
        }
        Err(ImportError::Storage(e)) => Err(e).context("import failed"),
    }
}

pub async fn export(services: &Services, list: ListKind) -> anyhow::Result<ExitCode> {
    let now = services.clock.now();
    let bytes = render_working_state(services.storage.as_ref(), list, now).await?;
    std::io::stdout().write_all(&bytes)?;
    Ok(ExitCode::SUCCESS)
}

/// Publishes `lists` in this order; stops at the first refusal.
pub async fn publish(
    services: &Services,
    lists: &[ListKind],
    confirm_mass_change: bool,
) -> anyhow::Result<ExitCode> {
    let options = PublishOptions {
        confirm_mass_change,
        published_by: cli_actor(),
    };
    for &list in lists {
        match services.publisher.publish(list, &options).await {
            Ok(record) => eprintln!(
                "published {list} Volgnummer {} ({} bytes, sha256 {}{}), valid until {}",
                record.volgnummer,
                record.size_bytes,
                record.sha256,
                if record.heartbeat {
                    ", same entries as before"
                } else {
                    ""
                },
                record.expires_at
            ),
            Err(PublishError::Refused { list, violations }) => {
                return Ok(refused(&format!("{list} not published:"), &violations));
            }
            Err(e) => return Err(e).context(format!("publishing {list} failed")),
        }
    }
    Ok(ExitCode::SUCCESS)
}
