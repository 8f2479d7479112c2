//! Bazaar's edge: the HTTP endpoints and the event handlers, written once and run either by
//! the Lambda runtime (one function each, see `functions/`) or by the local server (all of
//! them, see `server/`).
//!
//! - [`functions`]: the catalogue of deployable functions and their triggers;
//! - [`endpoints`]: one axum handler per HTTP function;
//! - [`consumers`]: the SQS-fed, scheduled and upload functions (not axum handlers);
//! - [`idempotent`]: `Idempotency-Key` for the requests that move money;
//! - [`router`]: builds the axum `Router` for one function or for all of them;
//! - [`lambda`]: what each function's `main` calls.

pub mod app;
pub mod bounds;
pub mod cache;
pub mod client;
pub mod consumers;
pub mod endpoints;
pub mod extract;
pub mod functions;
pub mod idempotent;
pub mod lambda;
pub mod middleware;
pub mod problem;
pub mod router;
pub mod security_headers;
pub mod settings;
pub mod telemetry;

pub use app::App;
