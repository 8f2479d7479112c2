//! Notification channels that record every message they are asked to send, and answer with
//! the failures a test queues up (a channel's provider refusing, or not answering).

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use bazaar_shared::ports::notifier::{Notifier, Outgoing, SendError};

#[derive(Default)]
pub struct Channels {
    /// Every send asked for, failed or not, in order.
    tries: Mutex<Vec<Outgoing>>,
    /// The answers of the next sends; success once they run out.
    script: Mutex<VecDeque<SendError>>,
}

impl Channels {
    /// The next send fails with `error` (queued after earlier ones).
    pub fn fail_next(&self, error: SendError) {
        lock(&self.script).push_back(error);
    }

    /// Every send asked for so far.
    pub fn tries(&self) -> Vec<Outgoing> {
        lock(&self.tries).clone()
    }

    /// The sends asked for to one target.
    pub fn tries_to(&self, target: &str) -> Vec<Outgoing> {
        self.tries()
            .into_iter()
            .filter(|message| message.target == target)
            .collect()
    }

    /// The code in the last message to `target` (the first run of six digits in its text).
    pub fn last_code_to(&self, target: &str) -> String {
        let text = self
            .tries_to(target)
            .last()
            .map(|message| message.text.clone())
            .unwrap_or_else(|| panic!("nothing was sent to {target}"));
        let digits: Vec<char> = text.chars().collect();
        digits
            .windows(6)
            .find(|window| window.iter().all(char::is_ascii_digit))
            .map(|window| window.iter().collect())
            .unwrap_or_else(|| panic!("no code in {text:?}"))
    }
}

#[async_trait]
impl Notifier for Channels {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        lock(&self.tries).push(message.clone());
        match lock(&self.script).pop_front() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
