//! The local stand-in for SES and SNS: every message becomes one readable file under
//! `<data dir>/outbox/<channel>/`, an `.eml` for e-mail (open it in any mail client), a
//! `.txt` for SMS and a `.json` for push. Names start with the time, so `ls` lists them in
//! order; the delivery id makes a re-send overwrite rather than duplicate.

use std::path::PathBuf;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bazaar_shared::ports::notifier::{Channel, Notifier, Outgoing, SendError};

pub struct FileOutbox {
    root: PathBuf,
    from: String,
}

impl FileOutbox {
    pub fn new(root: PathBuf, from: String) -> Self {
        Self { root, from }
    }
}

/// A header value in RFC 2047 form when it is not plain ASCII (subjects may be Persian).
fn header_text(text: &str) -> String {
    if text.is_ascii() {
        text.to_owned()
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(text.as_bytes()))
    }
}

/// The message as an RFC 5322 e-mail.
pub fn eml(from: &str, message: &Outgoing, date: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@bazaar.local>\r\nX-Bazaar-Event: {event}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
        to = message.target,
        subject = header_text(&message.subject),
        date = date.to_rfc2822(),
        id = message.delivery_id,
        event = message.event_type,
        body = message.text.replace('\n', "\r\n"),
    )
}

#[async_trait]
impl Notifier for FileOutbox {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let now = chrono::Utc::now();
        let (extension, content) = match message.channel {
            Channel::Email => ("eml", eml(&self.from, message, now)),
            Channel::Sms => (
                "txt",
                format!("To: {}\n\n{}\n", message.target, message.text),
            ),
            _ => (
                "json",
                serde_json::json!({
                    "target": message.target,
                    "title": message.subject,
                    "body": message.text,
                    "event": message.event_type,
                })
                .to_string(),
            ),
        };
        let dir = self.root.join(message.channel.as_str());
        let name = format!(
            "{}-{}.{extension}",
            now.format("%Y%m%dT%H%M%S%.3fZ"),
            message.delivery_id
        );
        let write = async {
            // Messages carry addresses and codes: owner-only, like the rest of the data.
            let (private_dir, partial) = (dir.clone(), dir.join(format!(".{name}.partial")));
            let (partial_path, bytes) = (partial.clone(), content.clone().into_bytes());
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                use std::io::Write;
                crate::private_files::create_dir(&private_dir)?;
                // Write aside, then rename: a reader never sees half a message.
                let mut file = crate::private_files::file_options()
                    .create(true)
                    .truncate(true)
                    .open(&partial_path)?;
                file.write_all(&bytes)
            })
            .await
            .map_err(std::io::Error::other)??;
            tokio::fs::rename(&partial, dir.join(&name)).await
        };
        write
            .await
            .map_err(|error| SendError::Transient(format!("outbox write failed: {error}")))
    }
}
