//! The `outbox-relay` function, run on a schedule: sends events whose inline send was lost.

use bazaar_shared::outbox::{self, SWEEP_GRACE};

use crate::App;

pub async fn run(app: &App) -> Result<usize, bazaar_shared::Error> {
    let sent = outbox::sweep(app.ports(), SWEEP_GRACE).await?;
    if sent > 0 {
        tracing::warn!(sent, "outbox entries relayed by the sweeper");
    }
    Ok(sent)
}
