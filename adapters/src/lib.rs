//! Adapters for Bazaar's ports on AWS, the ones every function package links:
//!
//! - [`aws`]: DynamoDB, SQS and S3 through the AWS SDK, with an overridable endpoint so that
//!   local emulators (moto, LocalStack) work too; each SDK client is built on first use;
//! - [`notify`]: e-mail through SES, SMS and push through SNS, Slack and webhooks over HTTPS;
//! - [`payments`]: simulated card, PayPal and crypto providers with documented test inputs;
//! - [`config`]: reading where data lives, and connecting the AWS adapters.
//!
//! The embedded backend (SQLite and files on disk) is the `bazaar-embedded` crate.

pub mod aws;
pub mod config;
pub mod notify;
pub mod payments;

pub use config::{Backend, BackendConfig, connect_aws};
