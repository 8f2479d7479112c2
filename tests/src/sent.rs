//! Every message the server's channels accepted, recorded beside the real sender (the
//! on-disk outbox, or SES and SNS on moto): how tests read the codes that prove ownership of
//! a target on both backends (moto keeps SMS out of its model dump).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::notifier::{Notifier, Notifiers, Outgoing, SendError};
use serde_json::json;

use crate::TestServer;
use crate::http::{Client, Response};

/// The messages sent so far, oldest first.
#[derive(Default)]
pub struct Sent {
    messages: Mutex<Vec<Outgoing>>,
}

impl Sent {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Outgoing>> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every message sent to `target`, oldest first.
    pub fn to(&self, target: &str) -> Vec<Outgoing> {
        self.lock()
            .iter()
            .filter(|message| message.target == target)
            .cloned()
            .collect()
    }

    /// The code in the newest code message sent to `target`, if any.
    pub fn latest_code(&self, target: &str) -> Option<String> {
        self.to(target)
            .iter()
            .rev()
            .filter(|message| message.event_type.ends_with("_VERIFICATION"))
            .find_map(|message| code_in(&message.subject))
    }

    /// Wraps every channel's sender so that what it accepts is recorded here.
    pub fn wrap(self: &Arc<Self>, notifiers: &mut Notifiers) {
        for sender in [
            &mut notifiers.email,
            &mut notifiers.sms,
            &mut notifiers.push,
            &mut notifiers.slack,
            &mut notifiers.webhook,
        ] {
            *sender = Arc::new(Recording {
                inner: sender.clone(),
                sent: self.clone(),
            });
        }
    }
}

/// The first run of exactly six digits in `text`.
pub fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_owned)
}

struct Recording {
    inner: Arc<dyn Notifier>,
    sent: Arc<Sent>,
}

#[async_trait]
impl Notifier for Recording {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let result = self.inner.send(message).await;
        if result.is_ok() {
            self.sent.lock().push(message.clone());
        }
        result
    }
}

impl TestServer {
    /// Waits for a code to reach `target` (30 s at most) and returns it.
    pub async fn code_for(&self, target: &str) -> String {
        for _ in 0..300 {
            if let Some(code) = self.sent.latest_code(target) {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no code reached {target}");
    }

    /// Proves the account e-mail `email` of the user holding `token` with the code it got.
    pub async fn verify_email(&self, client: &Client, token: &str, email: &str) -> Response {
        let code = self.code_for(email).await;
        let response = client
            .post(
                "/api/v1/users/me/email/verify",
                Some(token),
                json!({"code": code}),
            )
            .await;
        response.expect(200);
        response
    }

    /// Activates a pending subscription: an e-mail or SMS one with the code its target got,
    /// a Slack or webhook one by waiting until its test delivery was answered.
    pub async fn activate_subscription(&self, client: &Client, token: &str, subscribed: &Value) {
        let id = subscribed["id"].as_str().unwrap_or_default().to_owned();
        let target = subscribed["target"].as_str().unwrap_or_default().to_owned();
        if matches!(subscribed["channel"].as_str(), Some("email" | "sms")) {
            let code = self.code_for(&target).await;
            client
                .post(
                    &format!("/api/v1/notifications/subscriptions/{id}/verify"),
                    Some(token),
                    json!({"code": code}),
                )
                .await
                .expect(200);
        }
        crate::http::eventually(&format!("subscription {id} is active"), || async {
            let listing = client
                .get("/api/v1/notifications/subscriptions", Some(token))
                .await;
            listing.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["id"] == json!(id) && s["status"] == json!("active"))
        })
        .await;
    }
}

use serde_json::Value;
