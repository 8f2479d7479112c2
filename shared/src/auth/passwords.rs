//! Password hashing with Argon2id at the parameters OWASP recommends (19 MiB, 2 passes, one
//! lane). Hashing is deliberately slow, so it runs on the blocking thread pool, and at most one
//! hash per core runs at a time (see [`HashingPool`]): unbounded, a burst of anonymous logins
//! would take 19 MiB each and starve every other request of CPU.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody has, verified against when the account does not exist, so that
/// "no such e-mail" takes as long as "wrong password" and the two cannot be told apart.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_now("not-a-real-password-but-takes-as-long").unwrap_or_default());

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| Error::Internal(format!("password hashing failed: {error}")))
}

fn verify_now(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The longest a request waits for a free hashing slot before it is told to come back.
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How many requests may wait for a slot per slot; beyond that the answer is at once.
pub const QUEUE_PER_SLOT: usize = 8;
/// What a refused request is told: try again in this many seconds.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Bounds the Argon2 work of this process: `slots` hashes at once (one per core), a short
/// queue, and a bounded wait. A request that would wait long gets `Error::Busy` (503 with
/// Retry-After) instead of memory and a timeout. On Lambda an instance serves one request at
/// a time, so this matters to the local server.
pub struct HashingPool {
    slots: Arc<tokio::sync::Semaphore>,
    /// Requests holding or waiting for a slot.
    in_line: AtomicUsize,
    /// The most requests that may hold or wait for a slot.
    max_in_line: usize,
    max_wait: Duration,
}

/// Leaves the line when dropped, whatever happened meanwhile.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingPool {
    /// `slots` hashes at once, `queue` more requests waiting, each at most `max_wait`.
    pub fn new(slots: usize, queue: usize, max_wait: Duration) -> Self {
        let slots = slots.max(1);
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            in_line: AtomicUsize::new(0),
            max_in_line: slots + queue,
            max_wait,
        }
    }

    /// One slot per available core.
    fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, cores * QUEUE_PER_SLOT, MAX_WAIT)
    }

    /// Runs `work` on the blocking pool once a slot is free, or answers `Error::Busy`.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let busy = || Error::Busy {
            retry_after_secs: RETRY_AFTER_SECS,
        };
        let _in_line = InLine(&self.in_line);
        if self.in_line.fetch_add(1, Ordering::AcqRel) >= self.max_in_line {
            return Err(busy());
        }
        let slot = tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        // The slot goes with the work: a caller that gives up (a client that disconnects)
        // does not free it while the hash still runs.
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            work()
        })
        .await
        .map_err(|error| Error::Internal(format!("hashing task failed: {error}")))
    }
}

/// The process's pool.
static POOL: LazyLock<HashingPool> = LazyLock::new(HashingPool::for_this_machine);

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
pub async fn hash(password: &str) -> Result<String> {
    let password = password.to_owned();
    POOL.run(move || hash_now(&password)).await?
}

/// Checks a password against a stored hash; `None` (no such account) burns the same time and
/// answers false. `Error::Busy` when no hashing slot came free in time.
pub async fn verify(password: &str, stored: Option<&str>) -> Result<bool> {
    let password = password.to_owned();
    let stored = stored.map(str::to_owned);
    POOL.run(move || match stored {
        Some(stored) => verify_now(&password, &stored),
        None => {
            let _ = verify_now(&password, &DUMMY_HASH);
            false
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let first = hash("correct horse battery").await.unwrap_or_default();
        let second = hash("correct horse battery").await.unwrap_or_default();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "same password, same hash: no salt");
        let checks = [
            verify("correct horse battery", Some(&first)).await,
            verify("correct horse battery!", Some(&first)).await,
            verify("anything", None).await,
            verify("anything", Some("not a hash")).await,
        ];
        let answers: Vec<bool> = checks.into_iter().map(|c| c.unwrap_or(false)).collect();
        assert_eq!(answers, [true, false, false, false]);
    }

    #[tokio::test]
    async fn hashing_is_bounded_and_a_long_wait_is_refused_fast() {
        let pool = Arc::new(HashingPool::new(2, 2, Duration::from_millis(300)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let started = std::time::Instant::now();
                let outcome = pool
                    .run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await;
                (outcome.is_ok(), started.elapsed())
            }));
        }
        let mut done = 0;
        for task in tasks {
            let (ok, took) = task.await.unwrap_or((false, Duration::ZERO));
            if ok {
                done += 1;
            } else {
                assert!(took < Duration::from_millis(500), "refused after {took:?}");
            }
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "more hashes ran at once than slots"
        );
        // Two slots and two waiting places: the other eight are refused without waiting,
        // and of the four in line, those that would wait beyond 300 ms are refused too.
        assert!((2..=4).contains(&done), "{done} ran");
        let refused = pool.run(|| ()).await;
        assert!(refused.is_ok(), "the pool did not recover");
    }
}
