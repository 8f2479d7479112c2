//! E-mail through an SMTP server, for local development with a mail catcher (Mailpit,
//! MailHog, `python -m aiosmtpd`): set `BAZAAR_SMTP_URL=smtp://127.0.0.1:1025`. Plain SMTP
//! without TLS or authentication, which is what such servers speak; production e-mail goes
//! through SES.

use async_trait::async_trait;
use bazaar_shared::ports::notifier::{Notifier, Outgoing, SendError};
use bazaar_shared::settings::InvalidSetting;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub struct SmtpEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpEmail {
    /// From `smtp://host[:port]` (port 25 when absent) and the sender.
    pub fn new(url: &str, from: &str) -> Result<Self, InvalidSetting> {
        let refused = || InvalidSetting::new("BAZAAR_SMTP_URL", "smtp://host[:port]", url);
        let parsed = url::Url::parse(url).map_err(|_| refused())?;
        let host = match parsed.host_str() {
            Some(host) if parsed.scheme() == "smtp" => host,
            _ => return Err(refused()),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(25))
            .build();
        let from = from.parse::<Mailbox>().map_err(|_| {
            InvalidSetting::new(
                "BAZAAR_EMAIL_FROM",
                "an address like `Shop <shop@example.com>`",
                from,
            )
        })?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Notifier for SmtpEmail {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let to = message
            .target
            .parse::<Mailbox>()
            .map_err(|error| SendError::Permanent(format!("bad recipient: {error}")))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|error| SendError::Permanent(error.to_string()))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(SendError::Permanent(error.to_string())),
            Err(error) => Err(SendError::Transient(error.to_string())),
        }
    }
}
