//! The `orders-expire` function, run on a schedule: cancels unpaid orders whose stock
//! reservation has run out.

use crate::App;

pub async fn run(app: &App) -> Result<usize, bazaar_shared::Error> {
    let correlation_id = format!("orders-expire-{}", app.ports().ids.new_id());
    let expired = app.orders().expire_overdue(&correlation_id).await?;
    if expired > 0 {
        tracing::info!(expired, "unpaid orders expired");
    }
    Ok(expired)
}
