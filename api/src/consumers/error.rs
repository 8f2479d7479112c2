//! Why a queue consumer could not handle a message, and whether trying again can help.
//!
//! The rule: a message is **poison** when the same message would fail the same way however
//! often and however late it is tried; it goes to its queue's dead-letter queue at once, or
//! after its maximum receives for a consumer that leaves it to the queue (`sqs::Poison`).
//! Anything that may pass later is **retried** by the queue, and dead-lettered by the
//! queue's redrive policy only after its maximum receives. For domain errors:
//!
//! - poison: the body is not the command or event the queue carries; a stored command that
//!   fails validation (`Validation`, `BadRequest`) or names a version, credentials or rights
//!   it will never have (`PreconditionFailed`, `PreconditionRequired`, `Unauthenticated`,
//!   `Forbidden`); and `NotFound`. Every command and event is sent from the outbox only after
//!   the transaction that wrote what it names has committed, and the store's reads are
//!   strongly consistent, so an id that is not found now will not appear later (the order of
//!   a payment or an invoice, the attempt or refund of a payment command, the notification of
//!   a delivery command);
//! - retried: the store, the queues, the bucket or a provider unavailable (`Store`, `Queue`,
//!   `Blob`, `Unavailable`), a lost optimistic-write race or a state not reached yet
//!   (`Conflict`), a rate or capacity limit (`Throttled`, `Busy`, `Limit`), and `Internal`: a
//!   bug or a broken invariant is not the message's fault, and the message must still be
//!   there once it is fixed (the queue's redrive keeps it, after its maximum receives).
//!
//! When unsure, retry: a poison message that is retried still reaches the dead-letter queue
//! after the maximum receives, while a transient failure taken for poison skips its retries.

use bazaar_shared::Error;

/// A failed message, and what becomes of it.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Can never succeed: sent to the dead-letter queue on this receive (or left to the
    /// queue's redrive policy, as the consumer's `sqs::Poison` says).
    #[error("poison message: {0}")]
    Poison(Reason),
    /// May succeed later: the queue hands the message out again.
    #[error("{0}")]
    Retry(Reason),
}

/// What went wrong. Each reason is logged, so none repeats the body: the message may hold
/// personal data (a decoding error names a position, never a value).
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    /// The body is not what the queue carries (`expected`).
    #[error("the body is not {expected} ({category} error at line {line}, column {column})")]
    Undecodable {
        expected: &'static str,
        category: &'static str,
        line: usize,
        column: usize,
    },
    /// The body decodes but lacks what the consumer needs.
    #[error("{0}")]
    Incomplete(&'static str),
    #[error(transparent)]
    Domain(Error),
}

impl ConsumeError {
    /// A body that does not decode as `expected`.
    pub fn undecodable(expected: &'static str, error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let category = match error.classify() {
            Category::Io => "read",
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "end of input",
        };
        Self::Poison(Reason::Undecodable {
            expected,
            category,
            line: error.line(),
            column: error.column(),
        })
    }

    pub fn is_poison(&self) -> bool {
        matches!(self, Self::Poison(_))
    }
}

impl From<Error> for ConsumeError {
    fn from(error: Error) -> Self {
        if never_succeeds(&error) {
            Self::Poison(Reason::Domain(error))
        } else {
            Self::Retry(Reason::Domain(error))
        }
    }
}

/// The module's rule. No wildcard: a new variant must be classified here to compile.
fn never_succeeds(error: &Error) -> bool {
    match error {
        Error::Validation(_)
        | Error::BadRequest(_)
        | Error::NotFound(_)
        | Error::PreconditionFailed(_)
        | Error::PreconditionRequired(_)
        | Error::Unauthenticated(_)
        | Error::Forbidden(_) => true,
        Error::Conflict { .. }
        | Error::Store(_)
        | Error::Queue(_)
        | Error::Blob(_)
        | Error::Unavailable(_)
        | Error::Internal(_)
        | Error::Throttled { .. }
        | Error::Busy { .. }
        | Error::Limit { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use bazaar_shared::ports::{BlobError, QueueError, StoreError};

    use super::*;

    #[test]
    fn domain_errors_are_poison_only_when_no_retry_can_help() {
        let poison = [
            Error::invalid("order_id", "must not be empty"),
            Error::BadRequest("garbled".into()),
            Error::NotFound("payment attempt"),
            Error::PreconditionFailed("stale".into()),
            Error::PreconditionRequired("no version".into()),
            Error::Unauthenticated("no token".into()),
            Error::Forbidden("not yours".into()),
        ];
        for error in poison {
            let text = error.to_string();
            assert!(ConsumeError::from(error).is_poison(), "{text}");
        }
        let transient = [
            Error::conflict("the order changed concurrently"),
            Error::Store(StoreError::Unavailable("down".into())),
            Error::Store(StoreError::TransactionConflict),
            Error::Store(StoreError::ConditionFailed),
            Error::Queue(QueueError::Unavailable("down".into())),
            Error::Blob(BlobError::Unavailable("down".into())),
            Error::Unavailable("the provider timed out".into()),
            Error::Internal("a broken invariant".into()),
            Error::Throttled {
                retry_after_secs: 1,
            },
            Error::Busy {
                retry_after_secs: 1,
            },
            Error::limit("too many"),
        ];
        for error in transient {
            let text = error.to_string();
            assert!(!ConsumeError::from(error).is_poison(), "{text}");
        }
    }

    #[test]
    fn an_undecodable_body_is_poison_and_its_reason_quotes_none_of_it() {
        let body = r#"{"kind":"charge","order_id":"alice@example.com"}"#;
        let error = serde_json::from_str::<std::collections::BTreeMap<String, u32>>(body)
            .err()
            .map(|error| ConsumeError::undecodable("a payment command", &error));
        let reason = error.as_ref().map(ToString::to_string).unwrap_or_default();
        assert!(error.is_some_and(|error| error.is_poison()));
        assert!(reason.contains("not a payment command"), "{reason}");
        assert!(
            !reason.contains("charge") && !reason.contains("alice"),
            "{reason}"
        );
    }
}
