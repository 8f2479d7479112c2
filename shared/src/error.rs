//! The domain's errors. The HTTP edge maps each variant to one status and a problem+json body;
//! nothing here knows about HTTP.

use serde::Serialize;

use crate::ports::{BlobError, QueueError, StoreError};

/// One invalid input field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is well-formed but invalid; every failing field is listed.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// The input is malformed (a garbled cursor, an unparsable query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials (missing, malformed, expired or revoked token; wrong password).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist, or belongs to someone else.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (a duplicate, a stale version).
    #[error("{message}")]
    Conflict {
        message: String,
        fields: Vec<FieldError>,
    },
    /// The client's `If-Match` names a version that is no longer current.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A change that needs the version the client read came without one.
    #[error("{0}")]
    PreconditionRequired(String),
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// Something the request needs (the payment provider) is not answering; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant; the message is for logs, not for clients.
    #[error("internal error: {0}")]
    Internal(String),
    /// A business limit that the request would exceed (unpaid orders per customer, units per
    /// line, declined payments per order); the message names the limit.
    #[error("{message}")]
    Limit {
        message: String,
        fields: Vec<FieldError>,
    },
    /// The server is at capacity for this kind of work (password hashing); retry after this
    /// many seconds.
    #[error("the server is busy; try again in {retry_after_secs} seconds")]
    Busy { retry_after_secs: u64 },
}

impl Error {
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn invalid(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn limit(message: impl Into<String>) -> Self {
        Self::Limit {
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
