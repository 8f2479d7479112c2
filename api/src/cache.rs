//! An in-process cache of hot catalogue responses. A Lambda instance keeps it across warm
//! invocations (the local server for its lifetime), so a burst of reads of one product or one
//! listing page costs one trip to the store. Entries live [`TTL`]: that is how stale a read
//! served by another instance may be after an admin write. The instance that made the write
//! clears its cache at once, so in the local server a write is visible to the next read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// How long a cached response is served: the documented bound on staleness.
pub const TTL: Duration = Duration::from_secs(5);
/// How many responses one instance keeps.
pub const CAPACITY: usize = 1000;

/// A response body and its entity tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cached {
    pub body: Bytes,
    pub etag: String,
}

pub struct ResponseCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Cached)>>,
}

impl ResponseCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Cached)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Cached> {
        let entries = self.entries();
        let (stored, cached) = entries.get(key)?;
        (stored.elapsed() < self.ttl).then(|| cached.clone())
    }

    pub fn insert(&self, key: String, cached: Cached) {
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= self.capacity {
                // Still full of fresh entries: start over rather than track recency.
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), cached));
    }

    /// Forgets everything: after a write, nothing this instance serves may predate it.
    pub fn clear(&self) {
        self.entries().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(text: &'static str) -> Cached {
        Cached {
            body: Bytes::from_static(text.as_bytes()),
            etag: format!("\"{text}\""),
        }
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = ResponseCache::new(Duration::from_millis(50), 2);
        cache.insert("a".into(), cached("a"));
        assert_eq!(cache.get("a"), Some(cached("a")));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None, "served past its TTL");
        cache.insert("b".into(), cached("b"));
        cache.insert("c".into(), cached("c"));
        cache.insert("d".into(), cached("d"));
        assert!(cache.entries().len() <= 2);
        assert_eq!(cache.get("d"), Some(cached("d")));
        cache.clear();
        assert_eq!(cache.get("d"), None);
    }
}
