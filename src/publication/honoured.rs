//! "Is Gegevensdienst G of Zorgaanbieder Z honoured at t?" (seed 003 rule 7b): yes when the
//! current ZAL or a ZAL version still in its grace hour lists it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{PublishError, Publisher};
use crate::domain::{
    GegevensdienstId, ListEntries, ListKind, VersionStatus, Volgnummer, Zorgaanbiedernaam,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Honoured {
    pub honoured: bool,
    pub at: DateTime<Utc>,
    /// The ZAL versions that list it, with their status at `at`.
    pub by: Vec<(Volgnummer, VersionStatus)>,
}

impl Publisher {
    pub async fn honoured(
        &self,
        zorgaanbieder: &Zorgaanbiedernaam,
        gegevensdienst: &GegevensdienstId,
        at: DateTime<Utc>,
    ) -> Result<Honoured, PublishError> {
        let mut by = Vec::new();
        for record in self.versions_honoured_at(ListKind::Zal, at).await? {
            let status = record.status_at(at);
            if !status.is_honoured() {
                continue;
            }
            let entries = self.content(&record).await?;
            let ListEntries::Zal(zal) = entries.as_ref() else {
                continue;
            };
            let listed = zal.get(zorgaanbieder.as_str()).is_some_and(|za| {
                za.gegevensdiensten()
                    .iter()
                    .any(|g| g.id() == gegevensdienst)
            });
            if listed {
                by.push((record.volgnummer, status));
            }
        }
        Ok(Honoured {
            honoured: !by.is_empty(),
            at,
            by,
        })
    }
}
