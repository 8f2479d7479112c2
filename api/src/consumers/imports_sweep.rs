//! The `imports-sweep` function, run on a schedule: resumes catalogue imports whose run died
//! (their lease lapsed) and whose upload event will not come again.

use bazaar_shared::imports::{self, Swept};

use crate::App;

pub async fn run(app: &App) -> Result<Swept, bazaar_shared::Error> {
    let swept = imports::sweep(app.products()).await?;
    if swept.resumed > 0 {
        // Resumed rows changed products: cached catalogue pages are stale.
        app.cache().clear();
    }
    if swept != Swept::default() {
        tracing::info!(
            resumed = swept.resumed,
            busy = swept.busy,
            failed = swept.failed,
            "imports swept"
        );
    }
    Ok(swept)
}
