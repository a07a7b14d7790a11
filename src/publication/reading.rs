//! Reading what was published: versions, their stored bytes and entries (from memory or
//! parsed from the archive), and the warm-up after a start that parses and checks the current
//! versions before the first approval needs them.

use std::sync::Arc;

use super::{PublishError, Publisher, assemble};
use crate::domain::{ListEntries, ListKind, VersionRecord, Volgnummer};
use crate::storage::StorageError;
use crate::xml::{Rendered, check_rendered_entries, parse_list, render_version};

/// What `Publisher::version_content` found.
pub enum VersionContent {
    Entries(Arc<ListEntries>),
    /// Retention purged its bytes at `at` (its record stays).
    Purged {
        at: chrono::DateTime<chrono::Utc>,
    },
    /// The list has no such version.
    Missing,
}

impl Publisher {
    /// Parses the current versions ahead of the first publication after a start, so that
    /// the first approval does not wait for the archive to be read (10 000 entries: ~0.4 s),
    /// and, on a node that serves, checks each rendered once, so that the first approval's
    /// check reads only the entries it changes (the whole check: another ~0.2 s).
    pub async fn warm_up(&self) {
        for list in ListKind::ALL {
            if let Err(e) = self.warm_up_list(list).await {
                tracing::warn!(error = %e, %list, "cannot warm up the content cache");
            }
        }
    }

    async fn warm_up_list(&self, list: ListKind) -> Result<(), PublishError> {
        let Some(current) = self.storage.current_version(list).await? else {
            return Ok(());
        };
        let entries = self.content(&current).await?;
        if self.observer.get().is_none() {
            return Ok(());
        }
        let rendered = entries.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let Rendered { document, entries } =
                render_version(current.tijdstempel, current.volgnummer, &rendered, 0);
            check_rendered_entries(document.into(), list, &entries, None)
        })
        .await
        .expect("checking does not panic")
        .map_err(|violations| PublishError::RenderCheck { list, violations })?;
        // A publication meanwhile left a memo of its own, newer.
        let mut memo = self.checked.lock().expect("checked lock");
        memo.entry(list)
            .or_insert_with(|| Arc::new(checked.checked));
        Ok(())
    }

    /// Whether the next check of `list` reads only the entries that changed since the last
    /// one (`xml::check_rendered_entries`).
    pub fn remembers_checked_entries(&self, list: ListKind) -> bool {
        self.checked
            .lock()
            .expect("checked lock")
            .contains_key(&list)
    }

    /// Every version of `list`, oldest first.
    pub async fn versions(&self, list: ListKind) -> Result<Vec<VersionRecord>, PublishError> {
        Ok(self.storage.versions(list).await?)
    }

    /// Version `volgnummer` of `list` as stored: header, shared body, signature.
    pub async fn stored_version(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<Option<crate::storage::StoredVersion>, PublishError> {
        Ok(self.storage.version(list, volgnummer).await?)
    }

    /// The versions of `list` that could be honoured at `at`: valid then, not out of grace.
    pub async fn versions_honoured_at(
        &self,
        list: ListKind,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<VersionRecord>, PublishError> {
        Ok(self.storage.versions_honoured_at(list, at).await?)
    }

    /// The entries of version `volgnummer` of `list`, if it exists and retention left them.
    pub async fn version_content(
        &self,
        list: ListKind,
        volgnummer: Volgnummer,
    ) -> Result<VersionContent, PublishError> {
        let Some(stored) = self.storage.version(list, volgnummer).await? else {
            return Ok(VersionContent::Missing);
        };
        Ok(match stored.record.purged_at {
            Some(at) => VersionContent::Purged { at },
            None => VersionContent::Entries(self.content(&stored.record).await?),
        })
    }

    /// The entries of a published version, from memory or from the archive.
    pub async fn content(&self, record: &VersionRecord) -> Result<Arc<ListEntries>, PublishError> {
        if let Some(entries) = self.contents.get(&record.sha256) {
            return Ok(entries);
        }
        let stored = self
            .storage
            .version(record.list, record.volgnummer)
            .await?
            .ok_or_else(|| {
                StorageError::Corrupt(format!(
                    "{} version {} is missing",
                    record.list, record.volgnummer
                ))
            })?;
        let list = record.list;
        // Decompressing and parsing 10 000 Zorgaanbieders takes most of a second: not on an
        // async worker.
        let entries = tokio::task::spawn_blocking(move || -> Result<_, PublishError> {
            let document = assemble(&stored)?;
            let corrupt =
                |v| StorageError::Corrupt(format!("archived {list} version does not parse: {v}"));
            Ok(parse_list(&document, list).map_err(corrupt)?.entries)
        })
        .await
        .expect("parsing does not panic")?;
        let entries = Arc::new(entries);
        self.contents.remember(&record.sha256, entries.clone());
        Ok(entries)
    }
}
