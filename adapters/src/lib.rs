//! Adapters for Bazaar's ports, two of each, chosen at run time by configuration:
//!
//! - [`aws`]: DynamoDB, SQS and S3 through the AWS SDK, with an overridable endpoint so that
//!   local emulators (moto, LocalStack) work too;
//! - [`embedded`]: SQLite databases and files under a data directory, durable across restarts,
//!   the default whenever no AWS backend is configured;
//! - [`payments`]: simulated card, PayPal and crypto providers with documented test inputs.

pub mod aws;
pub mod config;
pub mod embedded;
pub mod notify;
pub mod payments;
pub mod private_files;

pub use config::{Backend, BackendConfig, connect};
