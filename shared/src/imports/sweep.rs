//! The import sweeper: resumes imports whose run died (a restart, a Lambda that timed out
//! after its retries) and whose event will never be delivered again. Running imports are
//! listed in their own `gsi1` partition, so the sweeper reads that partition, not the table.
//! Each one whose lease lapsed is handed to [`run`], which takes the lease conditionally: two
//! sweepers, or a sweeper and a redelivered upload event, never run one import twice.

use serde::Serialize;

use crate::catalogue::Products;
use crate::entity::Stored;
use crate::error::{Error, Result};
use crate::imports::model::{Import, ImportStatus};
use crate::imports::run::run;
use crate::keys;
use crate::ports::{Index, Query};

/// Running imports read per page of the index.
const PAGE: usize = 100;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Imports found running with a lapsed lease and run to their end.
    pub resumed: usize,
    /// Imports found running whose run is alive (lease not lapsed), or that another run took
    /// first.
    pub busy: usize,
    /// Imports whose resumed run failed again (they stay listed for the next sweep).
    pub failed: usize,
}

/// Resumes every running import whose lease lapsed, one after the other.
#[tracing::instrument(target = "bazaar::span", name = "imports.sweep", skip_all)]
pub async fn sweep(products: &Products) -> Result<Swept> {
    let ports = products.ports().clone();
    let mut swept = Swept::default();
    let mut stranded = Vec::new();
    let mut start_after = None;
    loop {
        let page = ports
            .store
            .query(
                &Query::partition(Index::Gsi1, keys::RUNNING_IMPORTS_PARTITION)
                    .limit(PAGE)
                    .start_after(start_after),
            )
            .await?;
        let now = ports.clock.now().timestamp();
        for item in page.items {
            let import = Import::from_item(item)?;
            // The index is eventually consistent: `run` reads the import again, strongly.
            if import.status != ImportStatus::Running {
                continue;
            }
            if import.lease_until > now {
                swept.busy += 1;
            } else {
                stranded.push(import.key);
            }
        }
        match page.last_key {
            Some(last) => start_after = Some(last),
            None => break,
        }
    }
    for key in stranded {
        match run(products, &key).await {
            Ok(view) => {
                tracing::info!(import_id = %view.id, status = ?view.status, "stranded import resumed");
                swept.resumed += 1;
            }
            // Taken by another sweeper or a redelivered event meanwhile: theirs to finish.
            Err(Error::Conflict { .. }) => swept.busy += 1,
            Err(error) => {
                tracing::error!(%key, %error, "a stranded import failed again");
                swept.failed += 1;
            }
        }
    }
    Ok(swept)
}
