//! `Idempotency-Key` for the requests that move money (`POST /orders`, `/pay`, `/refund`).
//!
//! A key is scoped to the user who sends it. The first request with a key claims it (a
//! conditional put, so exactly one of any number of concurrent requests does); its work then
//! commits the response in the same transaction as the work itself, so "done" and "answered"
//! can never disagree. Later requests with the key get that response again; a request whose
//! body differs is refused (422); one that arrives while the first is still running is a 409.
//! A request that fails releases its claim, so the key may be retried. A claim whose holder
//! died is taken over after [`LEASE_SECONDS`]; the dead holder's transaction, should it wake
//! up, fails on the claim's token.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Ports;
use crate::entity;
use crate::error::{Error, FieldError, Result};
use crate::ids::UserId;
use crate::keys;
use crate::ports::{Cond, Key, StoreError, TxOp};

/// How long a claim protects a request in flight.
pub const LEASE_SECONDS: i64 = 60;
/// How long a key is remembered (the record's TTL).
pub const RETENTION_SECONDS: i64 = 24 * 3600;
/// The longest key accepted.
pub const MAX_KEY_LENGTH: usize = 255;

/// The record's attributes that conditions and reads name: the claim's token and its state
/// (`in_flight`, then `done`).
const TOKEN: &str = "token";
const STATE: &str = "state";

/// The header carrying the key.
pub const HEADER: &str = "idempotency-key";

/// A claimed key: the request holding it may do its work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    key: Key,
    token: String,
    fingerprint: String,
    expires_at: i64,
}

/// A response remembered under a key: the body the work answered. How it is sent (its HTTP
/// status) is the edge's business: the same for a first answer and a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub body: Value,
}

pub enum Begin {
    /// The key is ours: do the work and commit [`Claim::complete`] with it.
    Proceed(Claim),
    /// The work was done before: answer this again.
    Replay(StoredResponse),
}

/// Checks a key's form: 1 to 255 printable ASCII characters.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > MAX_KEY_LENGTH
        || !key.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(Error::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )));
    }
    Ok(())
}

/// A digest identifying a request: what it is (method and path) and what it asks (its body).
pub fn fingerprint(operation: &str, body: &impl Serialize) -> String {
    let body = serde_json::to_string(body).unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(operation.as_bytes())
        .chain_update([0])
        .chain_update(body.as_bytes())
        .finalize();
    crate::digest::hex(&digest)
}

/// Claims `key` for the request with `fingerprint`, or finds what became of an earlier one.
pub async fn begin(ports: &Ports, user_id: &UserId, key: &str, fingerprint: &str) -> Result<Begin> {
    validate_key(key)?;
    let record_key = keys::idempotency(user_id, key);
    for _ in 0..3 {
        let now = ports.clock.now().timestamp();
        let claim = Claim {
            key: record_key.clone(),
            token: ports.ids.new_id(),
            fingerprint: fingerprint.to_owned(),
            expires_at: now + RETENTION_SECONDS,
        };
        // Put the claim where there is no record, or over one whose holder is gone.
        let cond = match ports.store.get(&record_key).await? {
            None => Cond::NotExists,
            Some(existing) => match earlier(&existing, fingerprint, now)? {
                Earlier::Answered(stored) => return Ok(Begin::Replay(stored)),
                Earlier::Lapsed(token) => Cond::Eq(TOKEN.into(), token),
            },
        };
        match ports.store.put(claim.in_flight(now), cond).await {
            Ok(()) => return Ok(Begin::Proceed(claim)),
            // Someone else claimed or took it over meanwhile: look again.
            Err(StoreError::ConditionFailed) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(still_running())
}

/// What an existing record says about a new request with the same key.
enum Earlier {
    /// Done: answer this again.
    Answered(StoredResponse),
    /// Expired, or its holder died: it may be taken over (its token, for the condition).
    Lapsed(Value),
}

/// Reads `record` for a request with `fingerprint` at `now`: a different request under a
/// live key is a 422, one still in flight a 409.
fn earlier(record: &crate::ports::Item, fingerprint: &str, now: i64) -> Result<Earlier> {
    let field = |name: &str| record.get(name).cloned().unwrap_or(Value::Null);
    let expired = field("expires_at").as_i64().unwrap_or(0) <= now;
    if expired {
        return Ok(Earlier::Lapsed(field(TOKEN)));
    }
    if field("fingerprint").as_str() != Some(fingerprint) {
        return Err(Error::Validation(vec![FieldError::new(
            "Idempotency-Key",
            "was already used with a different request",
        )]));
    }
    if field(STATE).as_str() == Some("done") {
        return Ok(Earlier::Answered(StoredResponse {
            body: field("body"),
        }));
    }
    if field("locked_until").as_i64().unwrap_or(0) > now {
        return Err(still_running());
    }
    Ok(Earlier::Lapsed(field(TOKEN)))
}

fn still_running() -> Error {
    Error::conflict("a request with this Idempotency-Key is still being processed; retry later")
}

impl Claim {
    /// The record of the claim while its request runs.
    fn in_flight(&self, now: i64) -> crate::ports::Item {
        entity::keyed(
            &self.key,
            json!({
                "state": "in_flight",
                "token": self.token,
                "fingerprint": self.fingerprint,
                "locked_until": now + LEASE_SECONDS,
                "expires_at": self.expires_at,
            }),
        )
    }

    /// The write that remembers the response; it belongs in the transaction of the work, and
    /// fails it if the claim was lost meanwhile.
    pub fn complete(&self, body: &impl Serialize) -> Result<TxOp> {
        let body = serde_json::to_value(body)
            .map_err(|error| Error::Internal(format!("response does not serialise: {error}")))?;
        let record = entity::keyed(
            &self.key,
            json!({
                "state": "done",
                "token": self.token,
                "fingerprint": self.fingerprint,
                "body": body,
                "expires_at": self.expires_at,
            }),
        );
        Ok(TxOp::Put {
            item: record,
            cond: Cond::eq(TOKEN, self.token.clone()),
        })
    }
}

/// Gives the key back after the request failed (it wrote nothing), so it may be retried.
pub async fn release(ports: &Ports, claim: &Claim) {
    let cond = Cond::All(vec![
        Cond::eq(TOKEN, claim.token.clone()),
        Cond::eq(STATE, "in_flight"),
    ]);
    if let Err(error) = ports.store.delete(&claim.key, cond).await {
        tracing::warn!(%error, "idempotency claim not released; it lapses after its lease");
    }
}
