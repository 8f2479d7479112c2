//! The typed view of one SQS record: its body decoded as what its queue carries, beside the
//! record's metadata. Decoding happens once, here, for every consumer.

use bazaar_shared::events::Event;
use bazaar_shared::notifications::fanout::Incoming;
use bazaar_shared::notifications::model::DeliverCommand;
use bazaar_shared::orders::PaymentCommand;
use bazaar_shared::ports::Attributes;
use serde::de::DeserializeOwned;

use crate::consumers::error::ConsumeError;

/// What a queue carries.
pub trait Body: DeserializeOwned {
    /// What a body that does not decode was taken for, in logs ("a payment command").
    const NAME: &'static str;

    /// The id of the request that caused the message.
    fn correlation_id(&self) -> &str;
}

/// One record with its body decoded.
#[derive(Clone, Debug)]
pub struct Message<T> {
    pub body: T,
    /// SQS's message id.
    pub id: String,
    /// How many times the queue has handed the message out, this time included.
    pub receive_count: u32,
    /// The message's string attributes (the sender's trace context among them).
    pub attributes: Attributes,
}

/// Decodes a record's body; a body that is not a `T` is poison.
pub fn decode<T: Body>(body: &str) -> Result<T, ConsumeError> {
    serde_json::from_str(body).map_err(|error| ConsumeError::undecodable(T::NAME, &error))
}

/// The correlation id as logs may carry it: what a request id can be (see the middleware),
/// so that a body cannot fill the logs.
pub fn loggable_correlation_id<T: Body>(body: &T) -> Option<&str> {
    let id = body.correlation_id();
    let printable = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    printable.then_some(id)
}

impl Body for Event {
    const NAME: &'static str = "an event";

    fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

impl Body for PaymentCommand {
    const NAME: &'static str = "a payment command";

    fn correlation_id(&self) -> &str {
        match self {
            PaymentCommand::Charge { correlation_id, .. }
            | PaymentCommand::Refund { correlation_id, .. } => correlation_id,
        }
    }
}

impl Body for DeliverCommand {
    const NAME: &'static str = "a delivery command";

    fn correlation_id(&self) -> &str {
        &self.correlation_id
    }
}

impl Body for Incoming {
    const NAME: &'static str = "an event or an admin's message";

    fn correlation_id(&self) -> &str {
        Incoming::correlation_id(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn correlation<T: Body>(body: &str) -> Option<String> {
        let decoded: T = decode(body).ok()?;
        loggable_correlation_id(&decoded).map(str::to_owned)
    }

    #[test]
    fn the_correlation_id_comes_with_the_decoded_body() {
        let event = r#"{"id":"e1","type":"ORDER_CREATED","occurred_at":"2026-01-01T00:00:00Z","correlation_id":"req-1","data":{}}"#;
        assert_eq!(correlation::<Event>(event).as_deref(), Some("req-1"));
        let command =
            r#"{"kind":"charge","order_id":"o","payment_id":"p","correlation_id":"req-2"}"#;
        assert_eq!(
            correlation::<PaymentCommand>(command).as_deref(),
            Some("req-2")
        );
        let refund = r#"{"kind":"refund","order_id":"o","refund_id":"r","correlation_id":"req-3"}"#;
        assert_eq!(
            correlation::<PaymentCommand>(refund).as_deref(),
            Some("req-3")
        );
        let delivery = r#"{"user_id":"u","notification_id":"n","correlation_id":"req-4"}"#;
        assert_eq!(
            correlation::<DeliverCommand>(delivery).as_deref(),
            Some("req-4")
        );
        let admin = r#"{"kind":"admin_message","message":{"id":"m","user_id":null,"event":null,"subject":"s","message":"m","sent_by":"a","correlation_id":"req-5"}}"#;
        assert_eq!(correlation::<Incoming>(admin).as_deref(), Some("req-5"));
    }

    #[test]
    fn only_a_request_id_shaped_correlation_id_is_logged() {
        let delivery = |id: &str| {
            format!(r#"{{"user_id":"u","notification_id":"n","correlation_id":"{id}"}}"#)
        };
        // Commands written before the id was carried have none.
        let old = r#"{"user_id":"u","notification_id":"n"}"#;
        assert_eq!(correlation::<DeliverCommand>(old), None);
        assert_eq!(
            correlation::<DeliverCommand>(&delivery(&"x".repeat(500))),
            None
        );
        assert_eq!(correlation::<DeliverCommand>(&delivery("a b")), None);
    }

    #[test]
    fn a_body_that_is_not_what_the_queue_carries_is_poison() {
        for body in [
            "not json",
            r#"{"kind":"charge"}"#,
            r#"{"kind":"wire","order_id":"o"}"#,
        ] {
            let decoded = decode::<PaymentCommand>(body);
            assert!(
                decoded.as_ref().is_err_and(ConsumeError::is_poison),
                "{body}: {decoded:?}"
            );
        }
    }
}
