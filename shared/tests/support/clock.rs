//! A clock that stands still until the test moves it, so that reservations, codes and
//! budgets expire exactly when a test says.

use std::sync::Mutex;

use bazaar_shared::ports::Clock;
use chrono::{DateTime, TimeDelta, Utc};

/// Where every test's clock starts: a fixed instant well before the test cards expire.
pub const START: &str = "2026-06-01T10:00:00Z";

pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new() -> Self {
        let start = DateTime::parse_from_rfc3339(START)
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_default();
        Self(Mutex::new(start))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: TimeDelta) {
        *self.lock() += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for TestClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        TestClock::now(self)
    }
}
