//! Local senders: a readable file per message in the data directory's outbox ([`files`]),
//! or e-mail to a development SMTP server when one is configured ([`smtp`]). Slack and
//! webhooks go out over HTTP as on AWS (`bazaar_adapters::notify::http`).

pub mod files;
pub mod smtp;
