//! Senders for the notification channels on AWS: e-mail through Amazon SES, SMS and push
//! through Amazon SNS ([`aws`]); Slack and webhooks by HTTPS POST ([`http`], also used
//! locally), webhook bodies signed. The local senders are in `bazaar-embedded`.

pub mod aws;
pub mod http;

use bazaar_shared::notifications::policy::SendBudget;

/// Where and how notifications go, from configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// The sender of e-mail (`BAZAAR_EMAIL_FROM`), an address SES has verified.
    pub email_from: String,
    /// Whether Slack and webhook targets may be private addresses over plain HTTP.
    pub allow_private_targets: bool,
    /// Embedded only: send e-mail to this SMTP server (`smtp://host:port`) instead of
    /// writing it to the outbox directory.
    pub smtp_url: Option<String>,
    /// Daily send budgets (`BAZAAR_SEND_BUDGET_PER_ACCOUNT`, `_PER_TARGET`, `_PER_URL`).
    pub budget: SendBudget,
    /// Calling-code prefixes SMS may go to (`BAZAAR_SMS_COUNTRIES`, e.g. `+98,+1`); every
    /// country when unset.
    pub sms_countries: Option<Vec<String>>,
}

impl NotifySettings {
    pub const DEFAULT_FROM: &'static str = "Bazaar <no-reply@bazaar.example>";
}
